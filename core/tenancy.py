"""Which merchants a user may see. Scoping is decided here once; admin and APIs ask, never re-derive."""


def visible_merchant_ids(user) -> set[int] | None:
    """Ids of the merchants whose data `user` may see, or None for all (superusers)."""
    if user.is_superuser:
        return None
    if not (user.is_active and user.is_staff):
        return set()
    return set(
        user.staff_memberships.filter(is_active=True, role__in=("owner", "manager"))
        .values_list("merchant_id", flat=True)
    )
