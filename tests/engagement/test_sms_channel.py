"""SMS through Twilio's REST API (a local fake, tests/engagement/twilio_fake.py): the request Twilio
documents, which refusals are permanent and which are worth another try, no secret or number in logs
or errors, and a channel that is unavailable rather than broken when Twilio is not configured."""
import base64
import logging
import socket
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from engagement.channels.base import ChannelUnavailable, OutgoingMessage, SendFailed
from engagement.channels.registry import channel_sender
from engagement.channels.sms import SmsChannel, SmsProvider
from engagement.channels.twilio import TwilioClient, TwilioSendFailed
from engagement.optout import opt_out_url, read_opt_out_token
from engagement.sms_length import segments
from tests.engagement.twilio_fake import FakeTwilio
from wallet.services.preferences import channel_consents, set_channel_consent
from wallet.services.privacy import erase_customer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-d41d8cd98f00b204"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
FROM = "+15005550006"
TO = "+14155550123"


@pytest.fixture
def twilio():
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def configured(settings, twilio):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM_NUMBER = FROM
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_API_BASE = twilio.url
    return twilio


def client_for(twilio, **overrides) -> TwilioClient:
    options = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": FROM, "base_url": twilio.url}
    return TwilioClient(**{**options, **overrides})


def outgoing(world, body: str) -> OutgoingMessage:
    return OutgoingMessage(
        merchant_id=world.merchant.pk, merchant_name=world.merchant.name, customer_id=world.customer.pk,
        card_id=world.card.pk, channel="sms", subject="Double points", body=body,
        opt_out_url=opt_out_url(world.customer.pk, world.merchant.pk, "sms"),
    )


def with_phone(customer, phone=TO):
    customer.user.phone = phone
    customer.user.save(update_fields=["phone"])
    return customer


# -- the Twilio client ---------------------------------------------------------------------------------------


def test_sends_the_documented_form_with_basic_auth(twilio):
    with client_for(twilio) as client:
        sid = client.send_message(TO, "Double points today")

    assert sid.startswith("SM") and sid == twilio.messages[0]["sid"]
    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"To": TO, "From": FROM, "Body": "Double points today"}
    assert request["authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()


def test_a_messaging_service_sends_instead_of_a_from_number(twilio):
    with client_for(twilio, from_number="", messaging_service_sid=SERVICE_SID) as client:
        client.send_message(TO, "Hello")
    assert twilio.requests[0]["form"] == {"To": TO, "MessagingServiceSid": SERVICE_SID, "Body": "Hello"}


@pytest.mark.parametrize("code", [21211, 21610, 21614])
def test_unreachable_numbers_are_permanent_failures(twilio, code):
    twilio.number_errors[TO] = code
    with client_for(twilio) as client, pytest.raises(TwilioSendFailed) as failure:
        client.send_message(TO, "Hello")
    assert failure.value.permanent is True
    assert failure.value.code == code and failure.value.status == 400
    assert TO not in str(failure.value)  # Twilio's own text quotes the number; ours does not


def test_rate_limit_is_retryable_with_retry_after_and_no_wait(twilio):
    twilio.fail(429, retry_after="7")
    started = time.monotonic()
    with client_for(twilio) as client, pytest.raises(TwilioSendFailed) as failure:
        client.send_message(TO, "Hello")
    assert failure.value.permanent is False
    assert failure.value.retry_after == 7.0 and failure.value.code == 20429
    assert len(twilio.requests) == 1 and twilio.messages == []  # no retry inside the request path
    assert time.monotonic() - started < 2


def test_server_errors_are_retryable(twilio):
    twilio.fail(503)
    with client_for(twilio) as client, pytest.raises(TwilioSendFailed) as failure:
        client.send_message(TO, "Hello")
    assert failure.value.permanent is False and failure.value.status == 503
    assert len(twilio.requests) == 1


def test_an_unreachable_twilio_is_retryable():
    with TwilioClient(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM,
                      base_url="http://127.0.0.1:9") as client, pytest.raises(TwilioSendFailed) as failure:
        client.send_message(TO, "Hello")
    assert failure.value.permanent is False


def test_a_request_twilio_received_but_never_answered_is_not_sent_again():
    """It may have been queued: a retry could text the customer twice, so the failure is permanent."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def swallow():
        connection, _ = listener.accept()
        held.append(connection)
        connection.recv(65536)  # the request arrives; no answer ever comes

    threading.Thread(target=swallow, daemon=True).start()
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with TwilioClient(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, base_url=base_url,
                          timeout=0.5) as client, pytest.raises(TwilioSendFailed) as failure:
            client.send_message(TO, "Hello")
    finally:
        for connection in held:
            connection.close()
        listener.close()
    assert failure.value.permanent is True and "may have gone out" in str(failure.value)


def test_wrong_credentials_fail_without_the_token_in_errors_or_logs(twilio, caplog):
    caplog.set_level(logging.DEBUG)
    with client_for(twilio, auth_token="not-the-real-token-7c4a8d09") as client, \
            pytest.raises(TwilioSendFailed) as failure:
        client.send_message(TO, "Hello")
    assert failure.value.status == 401 and failure.value.permanent is False
    with client_for(twilio) as client:
        client.send_message(TO, "Hello")  # a success logs too
    leaked = [secret for secret in ("not-the-real-token-7c4a8d09", AUTH_TOKEN, TO)
              if secret in caplog.text or secret in str(failure.value) or secret in repr(failure.value.args)]
    assert leaked == []
    for token in ("not-the-real-token-7c4a8d09", AUTH_TOKEN):
        assert base64.b64encode(f"{ACCOUNT_SID}:{token}".encode()).decode() not in caplog.text
    assert "Twilio refused an SMS: HTTP 401" in caplog.text  # the log is there, only without the secrets


def test_a_number_not_in_e164_is_refused_before_calling_twilio(twilio):
    with client_for(twilio) as client, pytest.raises(TwilioSendFailed) as failure:
        client.send_message("0612345678", "Hello")
    assert failure.value.permanent is True
    assert twilio.requests == []


@pytest.mark.parametrize("base_url", ["http://api.twilio.com", "ftp://127.0.0.1"])
def test_credentials_never_go_over_plain_http_to_another_machine(base_url):
    with pytest.raises(ImproperlyConfigured):
        TwilioClient(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM, base_url=base_url)


# -- the SMS channel ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_channel_sends_a_short_text_ending_with_the_opt_out_link(world, configured):
    twilio = configured
    customer = with_phone(world.customer)
    message = outgoing(world, "Double points on every pastry this weekend. " * 20)

    outcome = channel_sender("sms").send(message, customer)

    [sent] = twilio.messages
    assert outcome.provider_message_id == sent["sid"]
    assert sent["to"] == TO and sent["from"] == FROM
    assert sent["body"].startswith(f"{world.merchant.name}: Double points on every pastry")
    assert sent["body"].endswith(f"... Stop: {message.opt_out_url}")
    assert segments(sent["body"]) == 2  # cut to two SMS, not more


@pytest.mark.django_db
def test_a_text_the_dispatcher_already_ended_with_the_link_goes_out_as_it_is(world, configured):
    message = outgoing(world, "")
    shaped = f"{world.merchant.name}: Free coffee with any pastry today. Stop: {message.opt_out_url}"
    SmsChannel().send(replace(message, body=shaped), with_phone(world.customer))
    assert configured.messages[0]["body"] == shaped


@pytest.mark.django_db
def test_the_link_in_the_text_opts_out_of_sms_from_that_merchant(world, configured):
    twilio = configured
    customer = with_phone(world.customer)
    set_channel_consent(customer, world.merchant, {"sms": True, "email": True})
    SmsChannel().send(outgoing(world, "Hello"), customer)

    link = twilio.messages[0]["body"].rsplit("Stop: ", 1)[1]
    response = Client(enforce_csrf_checks=True).post(urlsplit(link).path)

    assert response.status_code == 200
    consents = channel_consents(customer, world.merchant)
    assert consents["sms"] is False and consents["email"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
def test_channel_is_unavailable_without_credentials(world, configured, settings, missing):
    setattr(settings, missing, "")
    with pytest.raises(ChannelUnavailable):
        SmsChannel().send(outgoing(world, "Hello"), with_phone(world.customer))
    assert configured.requests == []


@pytest.mark.django_db
def test_channel_is_unavailable_without_a_sender_or_with_an_insecure_base(world, configured, settings):
    settings.TWILIO_FROM_NUMBER = ""
    with pytest.raises(ChannelUnavailable):
        SmsChannel().send(outgoing(world, "Hello"), with_phone(world.customer))
    settings.TWILIO_FROM_NUMBER = FROM
    settings.TWILIO_API_BASE = "http://api.twilio.com"
    with pytest.raises(ChannelUnavailable):
        SmsChannel().send(outgoing(world, "Hello"), with_phone(world.customer))


@pytest.mark.django_db
def test_a_stopped_number_fails_permanently_through_the_channel(world, configured):
    configured.number_errors[TO] = 21610
    with pytest.raises(SendFailed) as failure:
        SmsChannel().send(outgoing(world, "Hello"), with_phone(world.customer))
    assert failure.value.permanent is True


@pytest.mark.django_db
def test_has_address_needs_a_phone_and_a_customer_not_erased(world):
    channel = SmsChannel()
    assert channel.has_address(world.customer) is False  # the factory's customers have no phone
    customer = with_phone(world.customer)
    assert channel.has_address(customer) is True
    erase_customer(customer)
    customer.refresh_from_db()
    assert channel.has_address(customer) is False


class RecordingProvider(SmsProvider):
    sent: list = []

    @classmethod
    def from_settings(cls):
        return cls()

    def send_sms(self, to_e164, body):
        self.sent.append((to_e164, body))
        return f"rec-{len(self.sent)}"


@pytest.mark.django_db
def test_another_provider_plugs_in_by_setting(world, settings):
    settings.TESSERA_SMS_PROVIDER = f"{__name__}.RecordingProvider"
    RecordingProvider.sent = []
    message = outgoing(world, "Hello")
    outcome = SmsChannel().send(message, with_phone(world.customer))
    assert outcome.provider_message_id == "rec-1"
    assert RecordingProvider.sent == [(TO, f"{world.merchant.name}: Hello Stop: {message.opt_out_url}")]


# -- through the dispatcher ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_campaign_text_goes_out_through_twilio_with_one_opt_out_link(shop, configured, settings):
    from engagement.campaigns import schedule_campaign
    from engagement.dispatch import dispatch_due
    from engagement.models import SendLog
    from tests.engagement.conftest import make_campaign, make_member, utc

    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    reachable = make_member(shop, "America/New_York", opt_in=("sms",), phone=TO)
    stopped = make_member(shop, "America/New_York", opt_in=("sms",), phone="+14155550199")
    configured.number_errors["+14155550199"] = 21610
    schedule_campaign(make_campaign(shop, channels=["sms"]), now=utc(2026, 12, 1))

    dispatch_due(utc(2026, 12, 7, 15, 0))

    [sent] = configured.messages
    text, _, link = sent["body"].rpartition(" Stop: ")
    assert sent["to"] == TO and text.startswith("Café Lumière: ") and "Stop:" not in text
    assert read_opt_out_token(urlsplit(link).path.split("/")[3]) == (reachable.pk, shop.merchant.pk, "sms")
    log = SendLog.objects.get(customer=reachable)
    assert (log.decision, log.provider_message_id) == ("sent", sent["sid"])
    failed = SendLog.objects.get(customer=stopped)
    assert (failed.decision, failed.reason) == ("failed", "recipient_opted_out")
    assert "21610" in failed.detail and "+14155550199" not in failed.detail
