"""Billing merchants for Tessera through Stripe: plans, Checkout, the billing portal, the webhook that
keeps each merchant's subscription status current, and the policy that pauses earning when it lapses."""
