"""Telling wallets that a pass changed, after the change commits and never at its expense.

A balance, tier or status change schedules one Celery task per card on commit. Nothing is
scheduled when neither Apple push (APNS_KEY_PATH) nor Google Wallet (a service account) is
configured, so a plain install sends no broker traffic for it. If the broker is down the
failure is logged and the purchase still stands (robust on_commit); the pass catches up on the
card's next change, or when the device asks the PassKit web service.
"""
from django.conf import settings
from django.db import transaction


def wallets_configured() -> bool:
    return bool(settings.APNS.get("KEY_PATH") or settings.GOOGLE_WALLET.get("SERVICE_ACCOUNT_FILE"))


def schedule_pass_update(card_id: int) -> None:
    if not wallets_configured():
        return

    def enqueue():
        from wallet.passes.tasks import pass_changed_task

        pass_changed_task.delay(card_id)

    transaction.on_commit(enqueue, robust=True)
