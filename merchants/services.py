"""Merchant staff: who may use the admin and the counter for which merchant.

Access is decided by the role of the membership (core.tenancy), not by Django's permission tables: an
owner or manager gets into the admin (is_staff) and sees only their merchants; a cashier never does.
"""
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction

from core.errors import ValidationFailed
from merchants.models import Merchant, StaffMember
from merchants.password_reset import send_staff_invitation

ADMIN_ROLES = (StaffMember.Role.OWNER, StaffMember.Role.MANAGER)


def grant_staff_access(merchant: Merchant, user, role: str) -> StaffMember:
    """Make `user` staff of `merchant` with `role`. Owners and managers use the admin; cashiers the counter."""
    if role not in StaffMember.Role.values:
        raise ValidationFailed("Unknown role.", fields={"role": ["Choose owner, manager or cashier."]})
    with transaction.atomic():
        member = StaffMember.objects.filter(merchant=merchant, user=user).first()
        if member is None:
            member = StaffMember.objects.create(merchant=merchant, user=user, role=role)
        elif (member.role, member.is_active) != (role, True):
            member.role, member.is_active = role, True
            member.save(update_fields=["role", "is_active"])  # saved, so the audit history shows it
        if role in ADMIN_ROLES and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    return member


def add_staff_by_email(merchant: Merchant, *, email: str, role: str, first_name: str = "") -> StaffMember:
    """An owner adds a colleague by email: the existing account with that email, or a new one without a
    usable password, mailed a one-time link to set it (merchants.password_reset); "Forgotten your password?"
    on the admin login page sends another."""
    email = (email or "").strip()
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("Enter a valid email address.", fields={"email": ["Invalid."]})
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User(username=email.lower(), email=email, first_name=first_name.strip()[:150])
            user.set_unusable_password()
            user.save()
            # After the commit, so a rolled-back add mails nobody.
            transaction.on_commit(partial(send_staff_invitation, user.pk, merchant.pk))
        return grant_staff_access(merchant, user, role)


def deactivate_staff(member: StaffMember) -> StaffMember:
    """Take away a colleague's access to this merchant (admin and counter); their history stays."""
    if member.is_active:
        member.is_active = False
        member.save(update_fields=["is_active"])
    return member
