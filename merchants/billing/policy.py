"""Whether a merchant may have its customers earn points, given its subscription."""
from merchants.models import Merchant


def earning_paused_reason(merchant: Merchant) -> str | None:
    """None when earning is allowed; else a sentence saying why it is paused. (Billing comes next.)"""
    return None
