"""Alert pushes to the wallet app on iPhones, through the house APNs client (wallet.passes.apple.apns).

`POST /3/device/<token>` with `apns-push-type: alert`, `apns-topic: <APNS_APP_BUNDLE_ID>` and
`{"aps": {"alert": {"title", "body"}}, ...}`; the app's custom keys (offer, card, opt-out link) sit
beside `aps`. The team's .p8 key, key id and team id are the Wallet pushes' (settings.APNS); an app
under development receives sandbox tokens, so its gateway can differ (APNS_APP_BASE_URL) while Wallet
pushes stay on production. One client per process and configuration, so the provider token (which
APNs lets change at most every 20 minutes) and the HTTP/2 connection are reused.
"""
from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings

from engagement.channels.base import OutgoingMessage
from wallet.passes.apple.apns import ApnsClient, PushResult


def app_bundle_id() -> str:
    return getattr(settings, "APNS_APP_BUNDLE_ID", "") or ""


def apns_alerts_configured() -> bool:
    config = settings.APNS
    return bool(app_bundle_id() and config.get("KEY_PATH") and config.get("KEY_ID") and config.get("TEAM_ID"))


def alert_payload(message: OutgoingMessage, data: dict[str, str]) -> dict:
    return {"aps": {"alert": {"title": message.subject, "body": message.body}}, **data}


_clients: dict[tuple, ApnsClient] = {}
_clients_lock = threading.Lock()


def _base_url() -> str:
    return getattr(settings, "APNS_APP_BASE_URL", "") or settings.APNS["BASE_URL"]


def apns_alert_client() -> ApnsClient:
    config = settings.APNS
    key = (_base_url(), config.get("KEY_PATH"), config.get("KEY_ID"), config.get("TEAM_ID"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = ApnsClient(
                base_url=key[0], key_pem=Path(key[1]).read_bytes(), key_id=key[2] or "", team_id=key[3] or "",
            )
        return client


def send_alert(token: str, message: OutgoingMessage, data: dict[str, str]) -> PushResult:
    return apns_alert_client().push_alert(token, app_bundle_id(), alert_payload(message, data))
