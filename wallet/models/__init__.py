from wallet.models.cards import Card, Customer, Wallet
from wallet.models.events import DomainEvent
from wallet.models.idempotency import IdempotencyRecord
from wallet.models.ledger import LedgerEntry
from wallet.models.purchases import Purchase, Redemption

__all__ = [
    "Card",
    "Customer",
    "DomainEvent",
    "IdempotencyRecord",
    "LedgerEntry",
    "Purchase",
    "Redemption",
    "Wallet",
]
