"""Which merchant a report page shows: one of those the signed-in owner or manager may see, named by
?merchant=<id>. A merchant outside that set is a 404, so a page never says whether it exists."""
from django.http import Http404

from core.tenancy import visible_merchant_ids
from merchants.models import Merchant


def reportable_merchants(user):
    """The merchants `user` may report on, by name (every merchant for a superuser)."""
    merchants = Merchant.objects.order_by("name", "pk")
    merchant_ids = visible_merchant_ids(user)
    return merchants if merchant_ids is None else merchants.filter(pk__in=merchant_ids)


def chosen_merchant(user, raw: str | None) -> Merchant | None:
    """The merchant named by `raw` if `user` may see it (else 404); with no choice, their first."""
    merchants = reportable_merchants(user)
    if raw in (None, ""):
        return merchants.first()
    if not raw.isdigit():
        raise Http404("No such merchant.")
    try:
        return merchants.get(pk=int(raw))
    except Merchant.DoesNotExist:
        raise Http404("No such merchant.") from None
