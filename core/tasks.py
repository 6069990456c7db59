"""Infrastructure tasks."""
from pathlib import Path

from celery import shared_task


@shared_task(name="core.tasks.ping_task")
def ping_task(marker_path: str, token: str) -> None:
    """Write `token` to `marker_path`: proves a real worker took a message off the configured broker."""
    Path(marker_path).write_text(token)
