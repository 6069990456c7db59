"""Errors the wallet services raise; each has a stable code the API and the counter show."""
from core.errors import Conflict, TesseraError, ValidationFailed


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    default_message = "The card does not have enough points."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_message = "This idempotency key was already used for a different request."


class RequestInProgress(Conflict):
    code = "request_in_progress"
    default_message = "A request with this idempotency key is still being processed; retry shortly."


class CardClosed(Conflict):
    code = "card_closed"
    default_message = "This card is closed."


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    default_message = "This reward is not available."


class PurchaseAlreadyRecorded(Conflict):
    code = "purchase_already_recorded"
    default_message = "A different purchase with this external id was already recorded."


class RefundExceedsPurchase(Conflict):
    code = "refund_exceeds_purchase"
    default_message = "The refund is larger than what remains of the purchase."


class RedemptionNotCancellable(Conflict):
    code = "redemption_not_cancellable"
    default_message = "Only an issued, unused redemption can be cancelled."


class InvalidRequest(ValidationFailed):
    code = "invalid_request"


class CouponNotUsable(Conflict):
    code = "coupon_not_usable"
    default_message = "Only an issued, unexpired coupon can be used."


class InvalidCredentials(TesseraError):
    # The same message whether the account exists, is inactive or the password is wrong: nobody can
    # probe which logins exist.
    code = "invalid_credentials"
    http_status = 401
    default_message = "No active account found with this login and password."


class InvalidRefreshToken(TesseraError):
    code = "invalid_token"
    http_status = 401
    default_message = "The refresh token is invalid, expired or revoked."


class WrongPassword(ValidationFailed):
    code = "wrong_password"
    default_message = "The password is not correct."


class PurchaseAlreadyClaimed(Conflict):
    code = "purchase_already_claimed"
    default_message = "This receipt was already claimed."


class EarningPaused(TesseraError):
    """The merchant's Tessera subscription has lapsed: cards keep their points and can redeem, but no
    new points are earned until the subscription is active again."""

    code = "earning_paused"
    http_status = 403
    default_message = (
        "Earning points is paused for this merchant because its Tessera subscription is not active. "
        "Points already on cards can still be redeemed."
    )


class EntryNotReversible(Conflict):
    code = "entry_not_reversible"
    default_message = (
        "Only earned, welcome and adjustment entries can be reversed: cancel a redemption or refund a "
        "purchase instead."
    )


class EntryAlreadyReversed(Conflict):
    code = "entry_already_reversed"
    default_message = "This entry has already been reversed."
