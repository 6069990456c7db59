"""Merchant staff: who may use the admin for which merchant."""
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from merchants.models import Merchant, StaffMember

STAFF_GROUP = "Merchant staff"
# What an owner or manager may look at in the admin, always scoped to their merchant
# (core.admin_base.MerchantScopedAdmin). Editing with scoped choices comes with the merchant admin.
STAFF_VIEW_MODELS = {
    "merchants": ["merchant", "store", "program", "tier", "reward", "staffmember"],
    "wallet": ["customer", "wallet", "card", "ledgerentry", "purchase", "redemption", "domainevent"],
    "pos_integration": ["posdevice"],
}


def staff_group() -> Group:
    group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    codenames = [f"view_{model}" for models in STAFF_VIEW_MODELS.values() for model in models]
    permissions = Permission.objects.filter(
        content_type__app_label__in=STAFF_VIEW_MODELS.keys(), codename__in=codenames
    )
    group.permissions.set(permissions)
    return group


def grant_staff_access(merchant: Merchant, user, role: str) -> StaffMember:
    """Make `user` staff of `merchant`. Owners and managers use the admin; cashiers use the counter only."""
    with transaction.atomic():
        member, _ = StaffMember.objects.update_or_create(
            merchant=merchant, user=user, defaults={"role": role, "is_active": True}
        )
        if role in (StaffMember.Role.OWNER, StaffMember.Role.MANAGER):
            if not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
            user.groups.add(staff_group())
    return member
