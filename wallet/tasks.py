"""Thin Celery wrappers around wallet services."""
from celery import shared_task

from wallet.services import expire_due_points


@shared_task(name="wallet.tasks.expire_points_task")
def expire_points_task() -> int:
    """Run by django-celery-beat: expire every card's due points. Returns how many cards changed."""
    return len(expire_due_points())
