"""Every state change of the wallet, as plain functions. Views, admin, tasks, webhooks and commands
call these; none of them writes wallet models directly."""
from wallet.services.adjustments import AdjustmentResult, adjust_points
from wallet.services.customers import create_customer
from wallet.services.earning import PurchaseRequest, PurchaseResult, record_purchase
from wallet.services.enrollment import EnrollmentResult, enroll, leave_program
from wallet.services.expiry import ExpiryResult, expire_due_points, expire_points
from wallet.services.redemption import (
    CancellationResult,
    RedemptionResult,
    cancel_redemption,
    redeem_reward,
)
from wallet.services.refunds import RefundResult, refund_purchase

__all__ = [
    "AdjustmentResult",
    "CancellationResult",
    "EnrollmentResult",
    "ExpiryResult",
    "PurchaseRequest",
    "PurchaseResult",
    "RedemptionResult",
    "RefundResult",
    "adjust_points",
    "cancel_redemption",
    "create_customer",
    "enroll",
    "expire_due_points",
    "expire_points",
    "leave_program",
    "record_purchase",
    "redeem_reward",
    "refund_purchase",
]
