"""A webhook's raw body under a size cap, refused before a byte is read when the sender says it is over.

Shared by every vendor webhook view (POS, CRM, Stripe billing): judging the declared Content-Length
first means an oversize body costs no reading and no signature work, and a body past Django's own
DATA_UPLOAD_MAX_MEMORY_SIZE gets our 413 instead of Django's bare 400.
"""
from django.core.exceptions import RequestDataTooBig


def capped_body(request, cap: int) -> bytes | None:
    """The raw body, or None when it is (or says it is) over `cap` bytes."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > cap:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return None if len(body) > cap else body
