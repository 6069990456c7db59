"""Which vendor URLs a connection may use: a credential or customer data travels with every call,
so https only, except plain http to this machine (a local test server or development)."""
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_secure_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def url_problem(value: str, *, https_only: bool) -> str:
    """Why `value` is not a usable absolute URL (https only when `https_only`), or "" when it is."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter an absolute URL, such as https://example.com/path."
    if https_only and not is_secure_or_loopback(value):
        return "Use https: the access token is sent with every call."
    return ""
