"""The dispatcher's beat task (every minute, settings.CELERY_BEAT_SCHEDULE "engagement-dispatch").

Safe to run on many workers at once and to re-run after a crash: each message is taken by one worker
(SKIP LOCKED) and decided once (engagement.dispatch).
"""
from celery import shared_task

from engagement.dispatch import dispatch_due
from engagement.pass_refresh import refresh_pass_offer_lines


@shared_task(name="engagement.dispatch_due_messages")
def dispatch_due_messages_task() -> int:
    """Decide every message whose recipient's local send time has come; returns how many."""
    return dispatch_due()


@shared_task(name="engagement.refresh_pass_offer_lines")
def refresh_pass_offer_lines_task() -> int:
    """Run by django-celery-beat every 15 minutes: passes whose best offer changed are updated."""
    return refresh_pass_offer_lines()
