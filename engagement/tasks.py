"""Being built (issue 8): the dispatcher's beat task."""
from celery import shared_task


@shared_task(name="engagement.dispatch_due_messages")
def dispatch_due_messages_task() -> int:
    return 0
