"""The dispatcher: decides every due message, channel by channel, and logs each decision.

For one message it writes exactly one SendLog per channel: skipped with a reason, sent, or failed.
Who may be reached is checked at the moment of sending, in the customer's own time zone: message-level
stops first (customer erased, card closed, campaign cancelled, offer ended), then per channel consent,
pause and quiet hours (wallet.services.preferences.may_contact), whether this site has the channel, the
customer's address on it, and the merchant's frequency cap (one message counts once however many of
its channels went out). Just before a text is handed to the provider, its number's own limits across
every merchant are counted (engagement.sms_caps); a text over them is logged `number_capped`, skipped.

Concurrency and crashes, in three steps per message:
1. One short transaction takes the oldest due message (SKIP LOCKED: two workers never take the same
   one), locks its customer's row (so two workers deciding two campaigns for one customer count the cap
   one after the other), writes every channel's log -- a send as `sent` with IN_FLIGHT as its detail,
   which is what reserves the cap slot -- and marks the message done.
2. The vendor calls happen after that commit, with no transaction open.
3. Each outcome updates its own log row: the provider's id, or `failed`/`provider_error`.
A crash between 1 and 3 leaves the message done and its log saying IN_FLIGHT: it is never picked up
again, so nobody gets a message twice (at most once); an operator sees which sends have no outcome.

A temporary failure (SendFailed not permanent: a provider outage, a rate limit) is tried again on the
same log row, at most MAX_ATTEMPTS sends in all, after RETRY_DELAYS or the provider's Retry-After if
longer. A retry is decided afresh like a first send -- consent, pause, channel, address, the cap -- so
a customer who opted out meanwhile is not reached, and one in quiet hours is tried when they end.
"""
import datetime as dt
import logging
import re
import zoneinfo
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from engagement import content
from engagement.campaigns import local_send_time
from engagement.channels.base import ChannelSender, ChannelUnavailable, OutgoingMessage, SendFailed
from engagement.channels.registry import channel_sender
from engagement.models import Campaign, Channel, MerchantEngagement, Message, SendLog
from engagement.optout import opt_out_url
from engagement.sms_caps import NumberCapped, reserve_sms
from wallet.models import Card, Customer
from wallet.services.preferences import QuietHours, may_contact, withdraw_consent_everywhere

logger = logging.getLogger(__name__)

Reason = SendLog.Reason
Decision = SendLog.Decision

IN_FLIGHT = "Handed to the provider; no outcome recorded yet."
MAX_ATTEMPTS = 3
RETRY_DELAYS = (dt.timedelta(minutes=5), dt.timedelta(minutes=30))  # after the first and second failure

_CONSENT_REASONS = {
    "customer_erased": Reason.ERASED,
    "paused": Reason.PAUSED,
    "not_opted_in": Reason.NO_CONSENT,
    "quiet_hours": Reason.QUIET_HOURS,
}
# Provider errors are logged for merchants to read: never let a credential through.
_SECRET = re.compile(r"(?i)(bearer\s+|basic\s+|(?:api[_-]?key|token|secret|password|authorization|auth)"
                     r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+")


@dataclass
class _Send:
    log_id: int
    sender: ChannelSender
    outgoing: OutgoingMessage
    attempt: int = 1


@dataclass
class _Decision:
    message_id: int
    campaign_id: int | None
    customer: Customer
    done: bool = True
    sends: list[_Send] = field(default_factory=list)


def dispatch_due(now: dt.datetime | None = None, *, limit: int = 500) -> int:
    """Decide up to `limit` due messages, oldest first; returns how many were decided.

    `now` pins the clock (tests, replays); without it each message is decided at the current time.
    """
    run = _Run()
    decided = 0
    campaigns: set[int] = set()
    for _ in range(limit):
        moment = now or timezone.now()
        decision = _decide_next(moment, run)
        if decision is None:
            break
        for send in decision.sends:
            _deliver(send, decision.customer, moment)
        if decision.done:
            decided += 1
            if decision.campaign_id:
                campaigns.add(decision.campaign_id)
    _finish_campaigns(campaigns)
    retry_due(now, limit=limit, run=run)
    return decided


def retry_due(now: dt.datetime | None = None, *, limit: int = 500, run: "_Run | None" = None) -> int:
    """Try again, up to `limit`, the sends that failed for a passing reason and whose time has come.
    Returns how many were decided (sent again, or skipped for a reason found now)."""
    run = run or _Run()
    retried = 0
    for _ in range(limit):
        moment = now or timezone.now()
        decision = _retry_next(moment, run)
        if decision is None:
            break
        for send in decision.sends:
            _deliver(send, decision.customer, moment)
        retried += decision.done
    return retried


class _Run:
    """What one dispatcher run looks up once: channel senders and merchants' limits and names."""

    def __init__(self):
        self._senders: dict[str, tuple[ChannelSender | None, str]] = {}
        self._limits: dict[int, tuple[int, int, str]] = {}

    def sender(self, channel: str) -> tuple[ChannelSender | None, str]:
        if channel not in self._senders:
            try:
                sender = channel_sender(channel)
                self._senders[channel] = (sender, "" if sender else "No sender configured for this channel.")
            except ChannelUnavailable as exc:
                self._senders[channel] = (None, _clean(str(exc)) or "Channel unavailable.")
            except (ImportError, ImproperlyConfigured):
                # One misconfigured channel must not stop every other channel's messages.
                logger.exception("engagement channel %s cannot be loaded", channel)
                self._senders[channel] = (None, "The channel's sender could not be loaded.")
        return self._senders[channel]

    def limits(self, merchant) -> tuple[int, int, str]:
        """(daily cap, weekly cap, sender name) of a merchant."""
        if merchant.pk not in self._limits:
            row = MerchantEngagement.objects.filter(merchant=merchant).first()
            self._limits[merchant.pk] = (
                row.daily_cap if row else MerchantEngagement.DEFAULT_DAILY_CAP,
                row.weekly_cap if row else MerchantEngagement.DEFAULT_WEEKLY_CAP,
                (row.sender_name if row else "") or merchant.name,
            )
        return self._limits[merchant.pk]


def _decide_next(moment: dt.datetime, run: _Run) -> _Decision | None:
    with transaction.atomic():
        message = (
            Message.objects.select_related("card", "offer", "campaign", "merchant")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(status=Message.Status.PENDING, due_at__lte=moment)
            .order_by("due_at", "pk")
            .first()
        )
        if message is None:
            return None
        # Every decision about this customer waits here for any other in flight: the cap count below
        # then sees the other's reserved slot.
        customer = (Customer.objects.select_related("user").select_for_update(of=("self",))
                    .get(pk=message.customer_id))
        decision = _Decision(message.pk, message.campaign_id, customer)
        local_time = _local_time(customer, moment)
        channels = _channels(message)

        stop = _message_stop(message, customer, moment)
        if stop is None and message.kind == Message.Kind.WELCOME:
            quiet_end = _end_of_quiet_hours(customer, moment)
            if quiet_end is not None:
                # A welcome is not lost to quiet hours: it waits until they end, and is decided then.
                message.due_at = quiet_end
                message.save(update_fields=["due_at"])
                decision.done = False
                return decision

        logs = []
        cap = _Cap(message, customer, moment, run)
        for channel in channels:
            log = SendLog(merchant_id=message.merchant_id, customer=customer, message=message,
                          campaign_id=message.campaign_id, channel=channel, local_time=local_time,
                          decided_at=moment, decision=Decision.SKIPPED)
            log.reason, log.detail, sender = stop or _channel_check(message, customer, channel, moment, run)
            if log.reason is None:
                if cap.reached():
                    log.reason = Reason.FREQUENCY_CAP
                    log.detail = cap.detail
                else:
                    log.decision, log.reason, log.detail = Decision.SENT, Reason.SENT, IN_FLIGHT
            log.save()
            logs.append((log, sender))
        message.status = Message.Status.DONE
        message.processed_at = moment
        message.save(update_fields=["status", "processed_at"])
        for log, sender in logs:
            if log.decision == Decision.SENT:
                decision.sends.append(_Send(log.pk, sender, _outgoing(message, customer, log.channel, run)))
        return decision


def _retry_next(moment: dt.datetime, run: "_Run") -> _Decision | None:
    """Step 1 again for one failed send whose retry is due: checked afresh, reserved, committed."""
    with transaction.atomic():
        log = (
            SendLog.objects.select_related("message__card", "message__offer", "message__campaign", "message__merchant")
            .select_for_update(skip_locked=True, of=("self",))
            .filter(decision=Decision.FAILED, retry_at__lte=moment)
            .order_by("retry_at", "pk")
            .first()
        )
        if log is None:
            return None
        message = log.message
        customer = (Customer.objects.select_related("user").select_for_update(of=("self",))
                    .get(pk=message.customer_id))
        decision = _Decision(message.pk, message.campaign_id, customer)
        reason, detail, sender = (_message_stop(message, customer, moment)
                                  or _channel_check(message, customer, log.channel, moment, run))
        if reason == Reason.QUIET_HOURS:
            log.retry_at = _end_of_quiet_hours(customer, moment)  # not now: they asked for quiet
            log.save(update_fields=["retry_at"])
            decision.done = False
            return decision
        already_counted = SendLog.objects.filter(message=message, decision=Decision.SENT).exists()
        cap = _Cap(message, customer, moment, run)
        if reason is None and not already_counted and cap.reached():
            reason, detail = Reason.FREQUENCY_CAP, cap.detail
        log.decided_at, log.retry_at = moment, None
        log.local_time = _local_time(customer, moment)
        if reason is not None:
            log.decision, log.reason, log.detail = Decision.SKIPPED, reason, detail
            log.save(update_fields=["decision", "reason", "detail", "decided_at", "retry_at", "local_time"])
            return decision
        log.decision, log.reason, log.detail, log.attempts = Decision.SENT, Reason.SENT, IN_FLIGHT, log.attempts + 1
        log.save(update_fields=["decision", "reason", "detail", "attempts", "decided_at", "retry_at", "local_time"])
        decision.sends.append(_Send(log.pk, sender, _outgoing(message, customer, log.channel, run), log.attempts))
        return decision


def _local_time(customer: Customer, moment: dt.datetime) -> str:
    """The recipient's wall clock at `moment`, as the send log shows it: "2026-12-07 10:00 HST"."""
    return moment.astimezone(zoneinfo.ZoneInfo(customer.time_zone)).strftime("%Y-%m-%d %H:%M %Z")


def _channels(message: Message) -> list[str]:
    wanted = list(dict.fromkeys(message.channels if isinstance(message.channels, list) else []))
    unknown = [channel for channel in wanted if channel not in Channel.values]
    if unknown:
        logger.warning("message %s names unknown channels %s; they are ignored", message.pk, unknown)
    return [channel for channel in wanted if channel in Channel.values]


def _message_stop(message: Message, customer: Customer, moment: dt.datetime):
    """(reason, detail, None) when no channel of this message may go out at all, else None."""
    if customer.erased_at is not None:
        return Reason.ERASED, "", None
    if message.card.status != Card.Status.ACTIVE:
        return Reason.CARD_CLOSED, "", None
    if message.campaign_id and message.campaign.status == Campaign.Status.CANCELLED:
        return Reason.CAMPAIGN_CANCELLED, "", None
    offer = message.offer
    if not offer.is_active or (offer.valid_until is not None and offer.valid_until <= moment):
        return Reason.OFFER_ENDED, "", None
    return None


def _channel_check(message, customer, channel: str, moment: dt.datetime, run: _Run):
    """(reason, detail, sender): reason None when the channel passes every check before the cap."""
    allowed, why = may_contact(customer, message.merchant, channel, moment)
    if not allowed:
        return _CONSENT_REASONS[why], "", None
    sender, detail = run.sender(channel)
    if sender is None:
        return Reason.CHANNEL_UNAVAILABLE, detail, None
    try:
        reachable = sender.has_address(customer, card=message.card)
    except ChannelUnavailable as exc:
        return Reason.CHANNEL_UNAVAILABLE, _clean(str(exc)), None
    except Exception as exc:  # a broken channel would otherwise jam the queue at this message forever
        logger.exception("engagement channel %s failed to look up an address", channel)
        return Reason.CHANNEL_UNAVAILABLE, f"Unexpected error in the channel ({type(exc).__name__}).", None
    if not reachable:
        return Reason.NO_ADDRESS, "", None
    return None, "", sender


class _Cap:
    """The merchant's frequency cap for this customer, counted once per message and only if needed.

    Counted messages are those with at least one `sent` log (an in-flight send included), so a message
    sent on three channels uses one slot and one whose every send failed uses none.
    """

    def __init__(self, message, customer, moment, run):
        self.message, self.customer, self.moment, self.run = message, customer, moment, run
        self._reached: bool | None = None
        self.detail = ""

    def reached(self) -> bool:
        if self._reached is None:
            self._reached = self._count()
        return self._reached

    def _count(self) -> bool:
        daily_cap, weekly_cap, _ = self.run.limits(self.message.merchant)
        local_day = self.moment.astimezone(zoneinfo.ZoneInfo(self.customer.time_zone)).date()
        day_start = local_send_time(local_day, dt.time(0), self.customer.time_zone)
        day_end = local_send_time(local_day + dt.timedelta(days=1), dt.time(0), self.customer.time_zone)
        sent = SendLog.objects.filter(merchant_id=self.message.merchant_id, customer=self.customer,
                                      decision=Decision.SENT).exclude(message_id=self.message.pk)
        today = sent.filter(decided_at__gte=day_start, decided_at__lt=day_end)
        if today.values("message_id").distinct().count() >= daily_cap:
            self.detail = f"{daily_cap} a day"
            return True
        week = sent.filter(decided_at__gt=self.moment - dt.timedelta(days=7))
        if week.values("message_id").distinct().count() >= weekly_cap:
            self.detail = f"{weekly_cap} in 7 days"
            return True
        return False


def _end_of_quiet_hours(customer: Customer, moment: dt.datetime) -> dt.datetime | None:
    """When the customer's quiet hours around `moment` end (UTC), or None if `moment` is outside them."""
    if customer.quiet_hours_start is None:
        return None
    quiet = QuietHours(customer.quiet_hours_start, customer.quiet_hours_end)
    local = moment.astimezone(zoneinfo.ZoneInfo(customer.time_zone))
    if not quiet.contains(local.time()):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += dt.timedelta(days=1)  # quiet hours spanning midnight, decided before midnight
    end = local_send_time(end_day, quiet.end, customer.time_zone)
    return max(end, moment + dt.timedelta(minutes=1))


def _outgoing(message: Message, customer: Customer, channel: str, run: _Run) -> OutgoingMessage:
    _, _, merchant_name = run.limits(message.merchant)
    if message.kind == Message.Kind.WELCOME:
        subject, body = content.welcome_text(merchant_name, message.offer)
    else:
        subject, body = message.campaign.subject, message.campaign.message
    link = opt_out_url(customer.pk, message.merchant_id, channel)
    text = content.render(channel, merchant_name=merchant_name, subject=subject, body=body, opt_out_url=link)
    headers = {}
    if channel == Channel.EMAIL:
        # RFC 8058 one-click unsubscribe, which mailbox providers show as their own button.
        headers = {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return OutgoingMessage(
        merchant_id=message.merchant_id, merchant_name=merchant_name, customer_id=customer.pk,
        card_id=message.card_id, channel=channel, subject=text.subject, body=text.body, opt_out_url=link,
        offer_id=message.offer_id, headers=headers,
    )


def _deliver(send: _Send, customer: Customer, moment: dt.datetime) -> None:
    """Send outside any transaction, then record the outcome on the log row reserved for it."""
    logs = SendLog.objects.filter(pk=send.log_id)
    try:
        if send.outgoing.channel == Channel.SMS:
            reserve_sms(customer.user.phone, moment)  # after the commit: a rolled-back decision uses no slot
        outcome = send.sender.send(send.outgoing, customer)
    except NumberCapped as exc:
        logs.update(decision=Decision.SKIPPED, reason=Reason.NUMBER_CAPPED, detail=str(exc))
    except ChannelUnavailable as exc:
        logs.update(decision=Decision.SKIPPED, reason=Reason.CHANNEL_UNAVAILABLE, detail=_clean(str(exc)))
    except SendFailed as exc:
        if exc.recipient_opted_out:
            channel = send.outgoing.channel
            logs.update(decision=Decision.FAILED, reason=Reason.RECIPIENT_OPTED_OUT, retry_at=None, detail=_clean(
                f"{exc} The customer's {channel} consent is withdrawn for every merchant (they share our sender)."))
            _withdraw_everywhere(customer, channel)
            return
        retry_at = None if exc.permanent else _next_try(send.attempt, exc.retry_after, moment)
        if exc.permanent:
            detail = f"Permanent failure: {exc}"
        elif retry_at is None:
            detail = f"Temporary failure, attempt {send.attempt} of {MAX_ATTEMPTS}, giving up: {exc}"
        else:
            detail = (f"Temporary failure, attempt {send.attempt} of {MAX_ATTEMPTS}, "
                      f"trying again at {retry_at:%Y-%m-%d %H:%M} UTC: {exc}")
        logs.update(decision=Decision.FAILED, reason=Reason.PROVIDER_ERROR, detail=_clean(detail), retry_at=retry_at)
    except Exception as exc:  # a broken channel must not stop the other messages of this run
        logger.exception("engagement channel %s failed unexpectedly", send.outgoing.channel)
        logs.update(decision=Decision.FAILED, reason=Reason.PROVIDER_ERROR,
                    detail=f"Unexpected error in the channel ({type(exc).__name__}).")
    else:
        provider_id = str(getattr(outcome, "provider_message_id", "") or "")[:200]
        logs.update(detail="", provider_message_id=provider_id)


def _withdraw_everywhere(customer: Customer, channel: str) -> None:
    """After the log: should this fail, the next send meets the provider's refusal and tries again."""
    try:
        withdraw_consent_everywhere(customer, [channel], source="provider_opt_out")
    except Exception:
        logger.exception("could not withdraw %s consent of customer %s after a provider opt-out", channel, customer.pk)


def _next_try(attempt: int, retry_after: float | None, moment: dt.datetime) -> dt.datetime | None:
    """When to try a temporarily failed send again, or None after the last attempt."""
    if attempt >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
    if retry_after:
        delay = max(delay, dt.timedelta(seconds=retry_after))
    return moment + delay


def _clean(text: str) -> str:
    return _SECRET.sub(r"\1[redacted]", " ".join(text.split()))[:300]


def _finish_campaigns(campaign_ids: set[int]) -> None:
    """A scheduled campaign with nothing left pending is done."""
    if not campaign_ids:
        return
    pending = Message.objects.filter(campaign_id__in=campaign_ids, status=Message.Status.PENDING).values("campaign_id")
    (Campaign.objects.filter(pk__in=campaign_ids, status=Campaign.Status.SCHEDULED)
     .exclude(pk__in=pending).update(status=Campaign.Status.DONE))
