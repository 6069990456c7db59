"""Every state change of the wallet, as plain functions. Views, admin, tasks, webhooks and commands
call these; none of them writes wallet models directly."""
from wallet.services.adjustments import AdjustmentResult, adjust_points
from wallet.services.customers import create_customer
from wallet.services.earning import PurchaseRequest, PurchaseResult, record_purchase
from wallet.services.enrollment import EnrollmentResult, enroll, leave_program
from wallet.services.expiry import ExpiryResult, expire_due_points, expire_points
from wallet.services.external_cards import (
    ExternalCardChanges,
    ExternalCardDraft,
    add_external_card,
    remove_external_card,
    update_external_card,
)
from wallet.services.redemption import (
    CancellationResult,
    RedemptionResult,
    cancel_redemption,
    mark_coupon_used,
    redeem_reward,
)
from wallet.services.refunds import RefundResult, refund_purchase
from wallet.services.reversals import ReversalResult, reverse_entry

__all__ = [
    "AdjustmentResult",
    "CancellationResult",
    "EnrollmentResult",
    "ExpiryResult",
    "ExternalCardChanges",
    "ExternalCardDraft",
    "PurchaseRequest",
    "PurchaseResult",
    "RedemptionResult",
    "RefundResult",
    "ReversalResult",
    "add_external_card",
    "adjust_points",
    "cancel_redemption",
    "create_customer",
    "enroll",
    "expire_due_points",
    "expire_points",
    "leave_program",
    "mark_coupon_used",
    "record_purchase",
    "redeem_reward",
    "refund_purchase",
    "reverse_entry",
    "remove_external_card",
    "update_external_card",
]

# Accounts and privacy (appended: see wallet/services/accounts.py and privacy.py).
from wallet.services.accounts import (  # noqa: E402
    Registration,
    TokenPair,
    change_password,
    log_in,
    register_customer,
    revoke_refresh_tokens,
    update_profile,
)
from wallet.services.privacy import ErasureResult, erase_customer, export_customer_data  # noqa: E402

__all__ += [
    "ErasureResult",
    "Registration",
    "TokenPair",
    "change_password",
    "erase_customer",
    "export_customer_data",
    "log_in",
    "register_customer",
    "revoke_refresh_tokens",
    "update_profile",
]

# Sales no card matched, claimed later with the receipt code (see wallet/services/unmatched.py).
from wallet.services.unmatched import (  # noqa: E402
    UnmatchedResult,
    attach_purchase,
    claim_purchase,
    record_unmatched_purchase,
)

__all__ += ["UnmatchedResult", "attach_purchase", "claim_purchase", "record_unmatched_purchase"]
