from wallet.models.cards import Card, Customer, Wallet
from wallet.models.events import DomainEvent
from wallet.models.external_cards import ExternalCard
from wallet.models.idempotency import IdempotencyRecord
from wallet.models.ledger import ExpirySweep, ExpiryWarning, LedgerEntry
from wallet.models.passes import AppleDevice, AppleRegistration, PassSigningKey
from wallet.models.preferences import CommunicationPreference
from wallet.models.purchases import Purchase, Redemption

__all__ = [
    "AppleDevice",
    "AppleRegistration",
    "PassSigningKey",
    "Card",
    "CommunicationPreference",
    "Customer",
    "DomainEvent",
    "ExpirySweep",
    "ExpiryWarning",
    "ExternalCard",
    "IdempotencyRecord",
    "LedgerEntry",
    "Purchase",
    "Redemption",
    "Wallet",
]
