"""Which merchants a user may see and change. Scoping is decided here once; admin and APIs ask, never
re-derive.

Roles per merchant: an owner runs everything of their merchant (staff, connections, billing); a manager
runs the day to day (stores, programs, rewards, cards, adjustments, devices); a cashier works the
counter only and has no admin access.
"""
OWNER = "owner"
MANAGER = "manager"
ADMIN_ROLES = (OWNER, MANAGER)


def merchant_roles(user) -> dict[int, str]:
    """merchant id -> role for the user's active admin memberships. Cached on the user object, which
    lives for one request."""
    cached = getattr(user, "_tessera_merchant_roles", None)
    if cached is None:
        if not (user.is_authenticated and user.is_active and user.is_staff):
            cached = {}
        else:
            cached = dict(
                user.staff_memberships.filter(
                    is_active=True, role__in=ADMIN_ROLES, merchant__is_active=True
                ).values_list("merchant_id", "role")
            )
        user._tessera_merchant_roles = cached
    return cached


def visible_merchant_ids(user) -> set[int] | None:
    """Ids of the merchants whose data `user` may see, or None for all (superusers)."""
    if user.is_superuser:
        return None
    return set(merchant_roles(user))


def may_use_admin(user) -> bool:
    """Whom the admin site lets in: active staff who are superusers or hold a role at an active membership."""
    return user.is_active and user.is_staff and (user.is_superuser or bool(visible_merchant_ids(user)))


def changeable_merchant_ids(user, roles=ADMIN_ROLES) -> set[int] | None:
    """Ids of the merchants where `user` holds one of `roles`, or None for all (superusers)."""
    if user.is_superuser:
        return None
    return {merchant_id for merchant_id, role in merchant_roles(user).items() if role in roles}


def merchant_lookup_for(model) -> str | None:
    """The ORM path from `model` to its merchant's id, or None when the model belongs to no merchant."""
    if model._meta.label == "merchants.Merchant":
        return "id"
    names = {field.name for field in model._meta.get_fields()}
    for field_name, path in (("merchant", "merchant"), ("program", "program__merchant"),
                             ("card", "card__merchant"), ("connection", "connection__merchant")):
        if field_name in names:
            return path
    return None


def scope_queryset(queryset, merchant_ids: set[int] | None, lookup: str | None = None):
    """`queryset` cut down to rows of `merchant_ids` (None: all). A model with no merchant gives none."""
    if merchant_ids is None:
        return queryset
    lookup = lookup or merchant_lookup_for(queryset.model)
    if lookup is None:
        return queryset.none()
    return queryset.filter(**{f"{lookup}__in": merchant_ids})
