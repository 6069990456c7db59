"""Audit history (django-simple-history) with one rule for who made a change: the signed-in person.

A POS device or an API client is not a person: their changes are recorded with no user (the device and
cashier of counter writes are kept in CounterAction instead).
"""
from django.contrib.auth import get_user_model
from simple_history.models import HistoricalRecords


def _signed_in_user(request, **kwargs):
    user = getattr(request, "user", None)
    if isinstance(user, get_user_model()) and user.is_authenticated:
        return user
    return None


def audit_history(**kwargs) -> HistoricalRecords:
    return HistoricalRecords(get_user=_signed_in_user, **kwargs)
