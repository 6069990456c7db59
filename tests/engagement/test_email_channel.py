"""Email: the message as a customer's mail client receives it (sender, Message-ID, RFC 8058 one-click
unsubscribe headers, the link last in the text), the link doing what it says, and provider errors
mapped to permanent or retryable failures, through Django's locmem and SMTP backends and
django-anymail's test ESP backend."""
import email
import email.policy
import socketserver
import threading
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus
from django.core import mail
from django.test import Client
from django.utils import timezone

from engagement.channels.base import ChannelUnavailable, OutgoingMessage, SendFailed
from engagement.channels.email import EmailChannel
from engagement.channels.registry import channel_sender
from engagement.optout import opt_out_url, read_opt_out_token
from wallet.services.preferences import may_contact, set_channel_consent
from wallet.services.privacy import erase_customer

pytestmark = pytest.mark.django_db

FROM = "offers@mail.tessera.test"


@pytest.fixture(autouse=True)
def locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = f"Tessera <{FROM}>"


def outgoing(world, *, body="Double points on pastries, all weekend.", merchant_name=None) -> OutgoingMessage:
    return OutgoingMessage(
        merchant_id=world.merchant.pk, merchant_name=merchant_name or world.merchant.name,
        customer_id=world.customer.pk, card_id=world.card.pk, channel="email", subject="Double points this weekend",
        body=body, opt_out_url=opt_out_url(world.customer.pk, world.merchant.pk, "email"),
    )


def received(sent) -> email.message.EmailMessage:
    """The message as the provider gets it: its bytes parsed back as a mail client would."""
    return email.message_from_bytes(sent.message().as_bytes(), policy=email.policy.default)


def test_the_email_as_received_and_its_unsubscribe_link(world):
    set_channel_consent(world.customer, world.merchant, {"email": True})
    message = outgoing(world, merchant_name="Café Lumière")

    outcome = channel_sender("email").send(message, world.customer)

    [sent] = mail.outbox
    parsed = received(sent)
    assert parsed["From"].addresses[0].display_name == "Café Lumière"
    assert parsed["From"].addresses[0].addr_spec == FROM
    assert parsed["To"] == world.customer.user.email
    assert parsed["Subject"] == "Double points this weekend"
    assert parsed["Message-ID"] == outcome.provider_message_id
    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith("@mail.tessera.test>")
    # A long header is folded onto a continuation line; unfolding leaves a leading space (RFC 5322 2.2.3).
    assert parsed["List-Unsubscribe"].strip() == f"<{message.opt_out_url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = parsed.get_body(("plain",)).get_content()
    assert text.startswith("Double points on pastries, all weekend.")
    assert text.rstrip().endswith(message.opt_out_url)
    html = parsed.get_body(("html",)).get_content()
    assert f'<a href="{message.opt_out_url}"' in html

    # The mail client's one-click button: a POST with no cookie and no CSRF token.
    link = urlsplit(parsed["List-Unsubscribe"].strip().strip("<>")).path
    browser = Client(enforce_csrf_checks=True)
    assert browser.get(link).status_code == 200
    assert may_contact(world.customer, world.merchant, "email", timezone.now()) == (True, "allowed")
    response = browser.post(link, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert may_contact(world.customer, world.merchant, "email", timezone.now()) == (False, "not_opted_in")


def test_a_text_the_dispatcher_already_ended_with_the_link_keeps_one_link(world):
    message = outgoing(world)
    link = message.opt_out_url
    shaped = f"Double points all weekend.\n\n--\nUnsubscribe in one click: {link}"
    EmailChannel().send(replace(message, body=shaped), world.customer)
    text = received(mail.outbox[0]).get_body(("plain",)).get_content()
    assert text.strip() == shaped and text.count(link) == 1


def test_the_html_part_escapes_the_merchants_text(world):
    EmailChannel().send(outgoing(world, body='Free <b>croissant</b>\n<script>alert("x")</script>'), world.customer)
    html = received(mail.outbox[0]).get_body(("html",)).get_content()
    assert "&lt;b&gt;croissant&lt;/b&gt;" in html and "<script>" not in html


def test_a_name_cannot_inject_headers(world):
    EmailChannel().send(outgoing(world, merchant_name="Evil\r\nBcc: everyone@example.com"), world.customer)
    parsed = received(mail.outbox[0])
    assert parsed["Bcc"] is None and mail.outbox[0].recipients() == [world.customer.user.email]


def test_has_address_needs_an_email_and_a_customer_not_erased(world):
    channel = EmailChannel()
    assert channel.has_address(world.customer) is True
    user = world.customer.user
    user.email = ""
    user.save(update_fields=["email"])
    assert channel.has_address(world.customer) is False
    with pytest.raises(SendFailed) as failure:
        channel.send(outgoing(world), world.customer)
    assert failure.value.permanent is True and mail.outbox == []


def test_an_erased_customer_has_no_address(world):
    erase_customer(world.customer)
    world.customer.refresh_from_db()
    assert EmailChannel().has_address(world.customer) is False


# -- through django-anymail ------------------------------------------------------------------------------------


class FakeEspBackend(AnymailTestBackend):
    """anymail's test ESP, answering like a provider: its own message ids; addresses at bounce.test are
    rejected (on its suppression list), and at down.test the API fails with a 503."""

    def get_esp_message_id(self, message):
        return f"esp-{mail.outbox.index(message) + 1:04d}"

    def post_to_esp(self, payload, message):
        domain = message.to[0].rpartition("@")[2]
        if domain == "bounce.test":
            message.anymail_test_response = {
                "recipient_status": {message.to[0]: AnymailRecipientStatus(message_id=None, status="rejected")}
            }
        elif domain == "down.test":
            message.anymail_test_response = AnymailAPIError("ESP unavailable", status_code=503)
        return super().post_to_esp(payload, message)


@pytest.fixture
def esp(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FakeEspBackend"


def set_email(customer, address):
    customer.user.email = address
    customer.user.save(update_fields=["email"])


def test_the_providers_message_id_is_kept(world, esp):
    outcome = EmailChannel().send(outgoing(world), world.customer)
    assert outcome.provider_message_id == "esp-0001"
    assert mail.outbox[0].anymail_test_params["extra_headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_provider_without_its_api_key_makes_the_channel_unavailable(world, settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {}
    with pytest.raises(ChannelUnavailable):
        EmailChannel().send(outgoing(world), world.customer)


def test_a_rejected_recipient_is_a_permanent_failure(world, esp):
    set_email(world.customer, "gone@bounce.test")
    with pytest.raises(SendFailed) as failure:
        EmailChannel().send(outgoing(world), world.customer)
    assert failure.value.permanent is True
    assert "gone@bounce.test" not in str(failure.value)


def test_a_provider_outage_is_retryable(world, esp):
    set_email(world.customer, "someone@down.test")
    with pytest.raises(SendFailed) as failure:
        EmailChannel().send(outgoing(world), world.customer)
    assert failure.value.permanent is False
    assert "503" in str(failure.value) and "someone@down.test" not in str(failure.value)


# -- through SMTP ---------------------------------------------------------------------------------------------


class FakeSmtp(socketserver.ThreadingTCPServer):
    """Just enough SMTP (RFC 5321) for Django's SMTP backend: refuses RCPT for addresses in `refused`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, refused=()):
        super().__init__(("127.0.0.1", 0), SmtpSession)
        self.refused, self.delivered = set(refused), []
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class SmtpSession(socketserver.StreamRequestHandler):
    def reply(self, line: str):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 fake.test ESMTP")
        recipients = []
        while line := self.rfile.readline():
            verb = line[:4].decode().upper()
            if verb == "EHLO" or verb == "HELO":
                self.reply("250 fake.test")
            elif verb == "MAIL" or verb == "RSET" or verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "RCPT":
                address = line.decode().partition("<")[2].partition(">")[0]
                if address in self.server.refused:
                    self.reply("550 5.1.1 Recipient address rejected: user unknown")
                else:
                    recipients.append(address)
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = b"".join(iter(lambda: self.rfile.readline(), b".\r\n"))
                self.server.delivered.append((recipients, data))
                self.reply("250 2.0.0 Ok: queued")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Command not recognized")


@pytest.fixture
def smtp(settings):
    server = FakeSmtp(refused={"gone@example.com"})
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.server_address[1], 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()


def test_delivered_over_smtp_with_the_unsubscribe_headers(world, smtp):
    message = outgoing(world)
    outcome = EmailChannel().send(message, world.customer)
    [(recipients, data)] = smtp.delivered
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert recipients == [world.customer.user.email]
    assert parsed["Message-ID"] == outcome.provider_message_id
    assert parsed["List-Unsubscribe"].strip() == f"<{message.opt_out_url}>"


def test_an_smtp_refused_recipient_is_permanent(world, smtp):
    set_email(world.customer, "gone@example.com")
    with pytest.raises(SendFailed) as failure:
        EmailChannel().send(outgoing(world), world.customer)
    assert failure.value.permanent is True and smtp.delivered == []
    assert "gone@example.com" not in str(failure.value)


def test_an_smtp_server_that_is_down_is_retryable(world, smtp, settings):
    settings.EMAIL_PORT = 9  # discard: nothing listens on this machine
    with pytest.raises(SendFailed) as failure:
        EmailChannel().send(outgoing(world), world.customer)
    assert failure.value.permanent is False


def test_a_campaign_email_goes_out_through_the_dispatcher_with_one_opt_out_link(shop, settings):
    from engagement.campaigns import schedule_campaign
    from engagement.dispatch import dispatch_due
    from engagement.models import SendLog
    from tests.engagement.conftest import make_campaign, make_member, utc

    settings.TESSERA_PUBLIC_URL = "https://tessera.example"
    member = make_member(shop, "America/New_York", opt_in=("email",))
    schedule_campaign(make_campaign(shop, channels=["email"]), now=utc(2026, 12, 1))

    dispatch_due(utc(2026, 12, 7, 15, 0))

    [sent] = mail.outbox
    parsed = received(sent)
    link = parsed["List-Unsubscribe"].strip().strip("<>")
    assert read_opt_out_token(urlsplit(link).path.split("/")[3]) == (member.pk, shop.merchant.pk, "email")
    text = parsed.get_body(("plain",)).get_content()
    assert text.rstrip().endswith(link) and text.count(link) == 1
    assert parsed["From"].addresses[0].display_name == "Café Lumière"
    log = SendLog.objects.get(customer=member)
    assert (log.decision, log.provider_message_id) == ("sent", parsed["Message-ID"])
