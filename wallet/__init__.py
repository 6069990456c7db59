"""The customer and the money: customers, wallets, cards, the points ledger, purchases, redemptions."""
