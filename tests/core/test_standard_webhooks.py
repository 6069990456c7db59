"""Standard Webhooks signing and verification: the spec's published vector and six-case matrix, and
the edges a sender or an attacker reaches (the tolerance both ways, other versions, a rotated key)."""
import base64
import datetime as dt

import pytest

from core.standard_webhooks import (
    SignatureInvalid,
    decode_secret,
    generate_secret,
    sign,
    signature,
    verify,
)

# The values of the spec's own library tests (standard-webhooks/libraries, "sign function works").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SENT_AT = dt.datetime.fromtimestamp(SPEC_TIMESTAMP, dt.UTC)
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key of 32 bytes, really!").decode()


def spec_headers() -> dict:
    return sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)


def test_signing_reproduces_the_spec_published_signature():
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert spec_headers() == {
        "webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": SPEC_SIGNATURE,
    }
    assert sign(SPEC_SECRET, SPEC_ID, SENT_AT, SPEC_BODY.decode()) == spec_headers()


# The six published cases -------------------------------------------------------------------------

def test_a_valid_delivery_is_accepted_and_its_id_returned():
    assert verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SENT_AT) == SPEC_ID


def test_several_signatures_are_accepted_when_one_of_them_is_valid():
    headers = spec_headers()
    wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    headers["webhook-signature"] = f"{wrong} v2,{SPEC_SIGNATURE[3:]} {SPEC_SIGNATURE} {wrong}"
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT) == SPEC_ID


def test_a_body_changed_after_signing_is_rejected():
    with pytest.raises(SignatureInvalid, match="No v1 signature matches"):
        verify(SPEC_SECRET, spec_headers(), b'{"test": 2432232315}', now=SENT_AT)


def test_a_signature_made_with_another_secret_is_rejected():
    with pytest.raises(SignatureInvalid, match="No v1 signature matches"):
        verify(OTHER_SECRET, spec_headers(), SPEC_BODY, now=SENT_AT)


def test_an_old_timestamp_is_rejected_even_with_a_valid_signature():
    with pytest.raises(SignatureInvalid, match="too old"):
        verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SENT_AT + dt.timedelta(minutes=5, seconds=1))


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_rejected_by_name(header):
    headers = spec_headers()
    del headers[header]
    with pytest.raises(SignatureInvalid, match=f"Missing header: {header}"):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT)


# Beyond the six ----------------------------------------------------------------------------------

def test_a_timestamp_too_far_in_the_future_is_rejected():
    with pytest.raises(SignatureInvalid, match="future"):
        verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SENT_AT - dt.timedelta(minutes=5, seconds=1))


def test_the_five_minute_tolerance_holds_both_ways_to_the_second():
    for offset in (dt.timedelta(minutes=5), -dt.timedelta(minutes=5)):
        assert verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SENT_AT + offset) == SPEC_ID


def test_a_correct_digest_under_another_version_label_is_not_accepted():
    headers = spec_headers()
    headers["webhook-signature"] = f"v1a,{SPEC_SIGNATURE[3:]} v2,{SPEC_SIGNATURE[3:]}"
    with pytest.raises(SignatureInvalid):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT)


def test_the_right_digest_in_hex_instead_of_base64_is_rejected():
    """The spec encodes the digest in base64; a sender (or a verifier) that also took hex would let one
    digest pass in two spellings. Hex digits are valid base64 characters, so this is decoded, not skipped."""
    digest = base64.b64decode(SPEC_SIGNATURE[3:])
    headers = spec_headers()
    for spelling in (digest.hex(), digest.hex().upper()):
        headers["webhook-signature"] = f"v1,{spelling}"
        with pytest.raises(SignatureInvalid, match="No v1 signature matches"):
            verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT)


@pytest.mark.parametrize("value", ["v1,", SPEC_SIGNATURE[:8], "v1,not base64!", "garbage", SPEC_SIGNATURE[3:]])
def test_truncated_or_malformed_signatures_are_rejected(value):
    headers = spec_headers()
    headers["webhook-signature"] = value
    with pytest.raises(SignatureInvalid):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT)


@pytest.mark.parametrize("value", ["hello", f"{SPEC_TIMESTAMP}.5", f"-{SPEC_TIMESTAMP}", "99999999999999999999"])
def test_a_timestamp_that_is_not_unix_seconds_is_rejected(value):
    headers = spec_headers()
    headers["webhook-timestamp"] = value
    with pytest.raises(SignatureInvalid, match="not unix seconds"):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT)


def test_header_names_are_matched_in_any_letter_case():
    headers = {name.title(): value for name, value in spec_headers().items()}
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT) == SPEC_ID


def test_an_id_with_a_dot_is_refused_on_both_sides():
    # "a.1" + "." + ts and "a" + "." + "1." + ts would otherwise be the same signed text.
    with pytest.raises(ValueError, match="without '.'"):
        sign(SPEC_SECRET, "msg.1", SPEC_TIMESTAMP, SPEC_BODY)
    headers = spec_headers()
    headers["webhook-id"] = "msg.1"
    with pytest.raises(SignatureInvalid):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SENT_AT)


def test_signing_with_two_secrets_during_rotation_verifies_under_either():
    headers = sign([OTHER_SECRET, SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers["webhook-signature"].split(" ")[1] == SPEC_SIGNATURE
    for secret in (SPEC_SECRET, OTHER_SECRET):
        assert verify(secret, headers, SPEC_BODY, now=SENT_AT) == SPEC_ID


def test_a_generated_secret_holds_a_32_byte_key_and_signs():
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(decode_secret(secret)) == 32
    assert verify(secret, sign(secret, "msg_1", SENT_AT, b"{}"), b"{}", now=SENT_AT) == "msg_1"


def test_a_secret_without_its_base64_padding_gives_the_same_key():
    padded = "whsec_" + base64.b64encode(b"k" * 25).decode()
    assert padded.endswith("=")
    assert decode_secret(padded.rstrip("=")) == decode_secret(padded) == b"k" * 25


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (SPEC_SECRET[len("whsec_"):], "must start with 'whsec_'"),
        ("whsec_not*base64*at*all", "not valid base64"),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), "24 to 64 bytes; this one has 23"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "24 to 64 bytes; this one has 65"),
    ],
)
def test_a_malformed_secret_is_refused_with_what_is_wrong(secret, problem):
    with pytest.raises(ValueError, match=problem):
        decode_secret(secret)
