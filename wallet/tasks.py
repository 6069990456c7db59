"""Thin Celery wrappers around wallet services."""
from celery import shared_task

from wallet.services import expire_due_points
from wallet.services.expiry_warnings import warn_expiring_points


@shared_task(name="wallet.tasks.expire_points_task")
def expire_points_task() -> int:
    """Run by django-celery-beat: expire every card's due points. Returns how many cards changed."""
    return len(expire_due_points())


@shared_task(name="wallet.tasks.warn_expiring_points_task")
def warn_expiring_points_task() -> int:
    """Run hourly by django-celery-beat: warn customers of points about to expire. Returns how many
    warnings were written (a card is warned once per expiry date, however often this runs)."""
    return len(warn_expiring_points())
