"""Celery tasks that bring wallet passes up to date."""
import logging
import random

from celery import shared_task
from django.conf import settings

from wallet.models import Card
from wallet.passes.apple.updates import push_card_update
from wallet.passes.google.client import GoogleWalletClient, GoogleWalletError, PermanentError, RateLimited

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped at an hour."""
    return random.uniform(0, min(3600, 10 * 2**attempt))


@shared_task(bind=True, name="wallet.passes.tasks.pass_changed_task", max_retries=MAX_ATTEMPTS, acks_late=True)
def pass_changed_task(self, card_id: int) -> dict:
    """Push every Apple device holding the card's pass and patch its Google Wallet object.

    Idempotent: a push only tells the device to fetch the latest pass, and the Google patch sets
    absolute values, so a retry or a duplicate does no harm.
    """
    outcome = {"apple_sent": 0, "google": "skipped"}
    retry_after = None
    if settings.APNS.get("KEY_PATH"):
        summary = push_card_update(card_id)
        outcome["apple_sent"] = summary.sent
        if summary.needs_retry:
            retry_after = _backoff(self.request.retries)
    if settings.GOOGLE_WALLET.get("SERVICE_ACCOUNT_FILE"):
        card = Card.objects.select_related("merchant", "program", "tier", "wallet__customer__user").get(pk=card_id)
        try:
            _update_google_object(card)
            outcome["google"] = "updated"
        except RateLimited as error:
            outcome["google"] = "rate_limited"
            retry_after = max(retry_after or 0, error.retry_after or _backoff(self.request.retries))
        except GoogleWalletError as error:
            outcome["google"] = "failed"
            if not error.retryable:
                logger.warning("Google Wallet update of card %s failed permanently: %s", card_id, error)
            else:
                retry_after = max(retry_after or 0, _backoff(self.request.retries))
    if retry_after is not None and self.request.retries < MAX_ATTEMPTS:
        raise self.retry(countdown=retry_after)
    return outcome


def _update_google_object(card: Card) -> None:
    """Patch the card's object; the first time a program reaches Google its class does not exist
    yet and the object cannot be created, so create the class and try once more."""
    client = GoogleWalletClient.from_settings()
    try:
        client.update_card_object(card)
    except PermanentError:
        client.upsert_class(card.program)
        client.update_card_object(card)
