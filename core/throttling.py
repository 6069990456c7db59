"""Rate limits that hold when many requests arrive at once: one counter per scope and caller, per window.

Why not DRF's `ScopedRateThrottle`: it reads a list of timestamps from the cache, decides, then writes
the list back. Twenty guesses arriving together all read the same short list and all pass. Here each
request adds one to a counter with the cache's atomic increment (`cache.add(key, 0)`, then
`cache.incr(key)`) and is judged by the number it got back, so however many arrive together, exactly
`limit` of them per window are let through and the rest get 429 with Retry-After.

Cache backends: the increment must be atomic, which it is in LocMemCache (under its lock; one process,
which is what tests and the development server are) and RedisCache (INCR; production, shared by every
worker). Not in DatabaseCache or FileBasedCache, whose `incr` is read-then-write.

A window opens with a caller's first request and lasts the rate's period (10/minute: ten requests in
the minute after the first, then a new window at the next request), so a caller can get up to twice the
limit through across a boundary: the price of one counter instead of a history. The window ends when
the counter's cache entry expires. Django's Redis `incr` is EXISTS then INCR, and INCR recreates a key
that expired in between without a TTL, which would lock that caller out for good; so whoever counts 1
(the first of a window, however the key came to be) sets the expiry again.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] by scope, read at each request so settings
overrides apply. Callers are the user when authenticated, else the client address as DRF finds it
(`X-Forwarded-For` handling follows REST_FRAMEWORK["NUM_PROXIES"]).
"""
import math
import time

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

# Until settings.py names it (THROTTLE_LOGIN_ACCOUNT), the per-account login limit uses this rate.
FALLBACK_RATES = {"login_account": "20/hour"}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

clock = time.time  # for Retry-After; tests move it by replacing this (windows end by cache expiry)


def parse_rate(rate: str) -> tuple[int, int]:
    """`"10/minute"` -> (10, 60), the way DRF reads its rates (only the period's first letter counts)."""
    number, period = rate.split("/")
    return int(number), _PERIODS[period.strip()[0]]


def rate_for(scope: str) -> str | None:
    rates = {**FALLBACK_RATES, **api_settings.DEFAULT_THROTTLE_RATES}
    if scope not in rates:
        raise ImproperlyConfigured(f"No throttle rate for scope {scope!r} in DEFAULT_THROTTLE_RATES")
    return rates[scope]


class FixedWindowThrottle(BaseThrottle):
    """Count this request against (scope, ident) in the current window; refuse beyond the rate.

    Subclasses say which scope and which ident; `None` from either means "not limited here".
    """

    def get_scope(self, request, view) -> str | None:
        raise NotImplementedError

    def get_ident_for(self, request, view) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self.retry_after = None
        scope = self.get_scope(request, view)
        rate = rate_for(scope) if scope else None
        if rate is None:
            return True
        ident = self.get_ident_for(request, view)
        if ident is None:
            return True
        limit, duration = parse_rate(rate)
        key = f"throttle:{scope}:{ident}"
        count = count_in_window(key, timeout=duration)
        now = clock()
        if count == 1:
            cache.set(f"throttle-opened:{scope}:{ident}", now, duration)
        if count <= limit:
            return True
        opened = cache.get(f"throttle-opened:{scope}:{ident}")
        remaining = duration if opened is None else opened + duration - now
        self.retry_after = min(duration, max(1, math.ceil(remaining)))  # concurrent clocks differ by a hair
        return False

    def wait(self):
        return self.retry_after


def count_in_window(key: str, *, timeout: int) -> int:
    """Add one to the counter at `key`, creating it with `timeout`, and return the new value: atomic
    across processes (add, then incr), so concurrent callers each get their own number."""
    for _attempt in range(3):
        cache.add(key, 0, timeout)
        try:
            count = cache.incr(key)
        except ValueError:  # it expired between add and incr: create it again
            continue
        if count == 1:
            cache.touch(key, timeout)  # an INCR that recreated an expired key left it without expiry
        return count
    raise RuntimeError(f"throttle counter {key} keeps expiring")


class ScopedCounterThrottle(FixedWindowThrottle):
    """A drop-in for `ScopedRateThrottle`: the view's `throttle_scope`, per user or else per client address."""

    def get_scope(self, request, view):
        return getattr(view, "throttle_scope", None)

    def get_ident_for(self, request, view):
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return f"ip-{self.get_ident(request)}"


class AccountThrottle(FixedWindowThrottle):
    """Per account tried, whatever the address: guessing one account's password from many addresses
    is limited too. The view names the scope (`account_throttle_scope`) and says which account a
    request is about (`throttle_account(request)`, normalised the way the account is looked up, or
    None). The account is kept in the cache only as a keyed hash, never in clear.

    The price: anyone can use up an account's attempts for the window, so it cannot log in until the
    window ends. Keep this rate well above what a person mistyping needs. The account is the identifier
    tried, so an account with both an email address and a phone number has a budget for each.
    """

    def get_scope(self, request, view):
        return getattr(view, "account_throttle_scope", None)

    def get_ident_for(self, request, view):
        account = view.throttle_account(request)
        if not account:
            return None
        return salted_hmac("core.throttling.account", account).hexdigest()
