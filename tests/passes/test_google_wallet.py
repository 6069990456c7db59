"""Google Wallet: objects, the save link, service-account tokens, and the REST client against a local fake."""
import json
import time

import httpx
import jwt
import pytest

from tests.passes.conftest import EMAIL, ISSUER, rsa_pem_pair
from wallet.passes.google import objects
from wallet.passes.google.client import (
    Conflict,
    GoogleWalletClient,
    NotFound,
    PermanentError,
    RateLimited,
    ServerError,
    Unauthorized,
    parse_retry_after,
)
from wallet.passes.google.credentials import (
    WALLET_SCOPE,
    ServiceAccount,
    ServiceAccountCredentials,
    TokenRequestError,
)
from wallet.passes.google.save_link import SAVE_URL_PREFIX, save_url
from wallet.services import PurchaseRequest, record_purchase


@pytest.fixture
def client(google_settings):
    c = GoogleWalletClient.from_settings()
    yield c
    c.close()


def _buy(card, amount, key):
    return record_purchase(
        card, PurchaseRequest(external_id=key, amount=amount, currency=card.merchant.currency), idempotency_key=key
    )


# -- objects ---------------------------------------------------------------------------------------------


def test_loyalty_class_fields(world, google_settings):
    world.merchant.brand_color = "#AA3300"
    world.merchant.save()
    world.store.country = "fr"
    world.store.save()
    body = objects.loyalty_class(world.program)
    assert body["id"] == f"{ISSUER}.{world.merchant.slug}-{world.program.pk}"
    assert body["issuerName"] == world.merchant.name
    assert body["programName"] == world.program.name
    assert body["programLogo"]["sourceUri"]["uri"].startswith("https://tessera.example/")
    assert body["reviewStatus"] == "UNDER_REVIEW"
    assert body["hexBackgroundColor"] == "#aa3300"
    assert body["merchantLocations"] == [{"latitude": 48.8566, "longitude": 2.3522}]
    assert body["countryCode"] == "FR"


def test_loyalty_class_skips_inactive_stores(world, google_settings):
    world.store.is_active = False
    world.store.save()
    assert "merchantLocations" not in objects.loyalty_class(world.program)


def test_loyalty_object_matches_card(world, google_settings):
    world.program.token_period_seconds = 45
    world.program.save()
    _buy(world.card, 1234, "p1")
    world.card.refresh_from_db()
    world.card.pass_message = "Double points this weekend"
    world.card.save()
    world.customer.user.first_name = "Priya"
    world.customer.user.save()
    body = objects.loyalty_object(world.card)
    assert body["id"] == f"{ISSUER}.card-{world.card.number}"
    assert body["classId"] == objects.class_id(world.program)
    assert body["state"] == "ACTIVE"
    assert body["accountId"] == world.card.number
    assert body["accountName"] == "Priya"
    assert world.card.balance > 0
    assert body["loyaltyPoints"] == {"label": "Points", "balance": {"int": world.card.balance}}
    assert body["secondaryLoyaltyPoints"]["balance"] == {"string": world.card.tier.name}
    assert body["textModulesData"][0]["body"] == "Double points this weekend"
    assert "hasUsers" not in body and "barcode" not in body
    rb = body["rotatingBarcode"]
    assert rb["type"] == "QR_CODE" and rb["alternateText"] == world.card.number
    assert "{totp_value_0}" in rb["valuePattern"]
    totp = rb["totpDetails"]
    assert totp["periodMillis"] == "45000" and totp["algorithm"] == "TOTP_SHA1"
    assert totp["parameters"][0]["valueLength"] == 8
    key = totp["parameters"][0]["key"]
    assert bytes.fromhex(key) == objects.totp_secret(world.card.number) and len(key) == 40


def test_loyalty_object_closed_card_and_member_name(world, google_settings):
    world.card.status = world.card.Status.CLOSED
    world.card.save()
    body = objects.loyalty_object(world.card)
    assert body["state"] == "INACTIVE"
    assert body["accountName"] == "Member"
    assert "textModulesData" not in body


def test_totp_keys_differ_per_card_and_follow_signing_key(settings):
    settings.SIGNING_KEY = "a" * 40
    a1, b1 = objects.totp_key_base16("4000000000000002"), objects.totp_key_base16("4000000000000010")
    settings.SIGNING_KEY = "b" * 40
    assert a1 != b1 and objects.totp_key_base16("4000000000000002") != a1


@pytest.mark.parametrize(("t", "expected"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
    (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_totp_matches_rfc6238_vectors(t, expected):
    assert objects.totp_value(b"12345678901234567890", t, period_seconds=30) == expected


def test_totp_google_example_period_3s():
    assert objects.totp_value(b"12345678901234567890", 59, period_seconds=3) == "21578337"


# -- save link -------------------------------------------------------------------------------------------


def test_save_url_is_verifiable_skinny_jwt(world, google_settings, rsa_keys):
    url = save_url(world.card)
    assert url.startswith(SAVE_URL_PREFIX)
    token = url[len(SAVE_URL_PREFIX):]
    assert len(token) <= 1800
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, rsa_keys[1], algorithms=["RS256"], audience="google")
    assert claims["iss"] == EMAIL and claims["typ"] == "savetowallet" and isinstance(claims["iat"], int)
    assert claims["origins"] == ["https://tessera.example"]
    assert claims["payload"]["loyaltyObjects"] == [
        {"id": f"{ISSUER}.card-{world.card.number}", "classId": objects.class_id(world.program)}
    ]
    assert objects.totp_key_base16(world.card.number) not in token and "totpDetails" not in json.dumps(claims)


def test_save_url_refuses_other_key(world, google_settings):
    other_public = rsa_pem_pair()[1]
    token = save_url(world.card)[len(SAVE_URL_PREFIX):]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other_public, algorithms=["RS256"], audience="google")


def test_save_url_can_embed_full_object(world, google_settings, rsa_keys):
    token = save_url(world.card, embed_object=True)[len(SAVE_URL_PREFIX):]
    claims = jwt.decode(token, rsa_keys[1], algorithms=["RS256"], audience="google")
    assert claims["payload"]["loyaltyObjects"] == [objects.loyalty_object(world.card)]


# -- credentials -----------------------------------------------------------------------------------------


def test_access_token_is_cached_until_near_expiry(google_settings, fake, service_account_file):
    now = [time.time() - 3400]  # the clock ends at the real now, so every assertion is valid
    creds = ServiceAccountCredentials(
        ServiceAccount.from_file(service_account_file), fake.token_url, clock=lambda: now[0]
    )
    first = creds.token()
    assert creds.token() == first and fake.token_requests == 1
    now[0] += 3000  # within 3599 s less the refresh margin
    assert creds.token() == first and fake.token_requests == 1
    now[0] += 400  # past expiry minus margin
    assert creds.token() != first and fake.token_requests == 2


def test_token_endpoint_refuses_foreign_key(fake):
    forged = ServiceAccount(client_email=EMAIL, private_key=rsa_pem_pair()[0])
    with pytest.raises(TokenRequestError) as caught:
        ServiceAccountCredentials(forged, fake.token_url).token()
    assert caught.value.status == 400 and not caught.value.retryable
    assert not fake.tokens


def test_token_endpoint_refuses_wrong_scope(fake, service_account_file):
    creds = ServiceAccountCredentials(
        ServiceAccount.from_file(service_account_file), fake.token_url,
        scope="https://www.googleapis.com/auth/cloud-platform",
    )
    with pytest.raises(TokenRequestError, match="invalid_scope"):
        creds.token()


def test_assertion_claims(service_account_file, fake, rsa_keys):
    creds = ServiceAccountCredentials(ServiceAccount.from_file(service_account_file), fake.token_url)
    claims = jwt.decode(creds.assertion(1_700_000_000), rsa_keys[1], algorithms=["RS256"],
                        audience=fake.token_url, options={"verify_exp": False, "verify_iat": False})
    assert claims["scope"] == WALLET_SCOPE and claims["iss"] == EMAIL and claims["exp"] - claims["iat"] == 3600


# -- REST client against the fake ------------------------------------------------------------------------


def test_upsert_creates_then_patches(world, client, fake):
    client.upsert_class(world.program)
    assert fake.classes[objects.class_id(world.program)]["reviewStatus"] == "UNDER_REVIEW"
    oid = objects.object_id(world.card)
    client.upsert_object(world.card)
    assert fake.objects[oid]["loyaltyPoints"]["balance"] == {"int": world.card.balance}
    world.card.pass_message = "Welcome back"
    world.card.save()
    client.upsert_object(world.card)
    methods = [(m, p.split("/")[-1]) for m, p, _ in fake.requests if "loyaltyObject" in p]
    assert methods == [("POST", "loyaltyObject"), ("POST", "loyaltyObject"), ("PATCH", oid)]
    assert fake.objects[oid]["textModulesData"][0]["body"] == "Welcome back"
    assert client.get_object(oid)["rotatingBarcode"]["totpDetails"]["algorithm"] == "TOTP_SHA1"


def test_duplicate_insert_is_conflict(world, client):
    client.upsert_class(world.program)
    client.insert_object(objects.loyalty_object(world.card))
    with pytest.raises(Conflict) as caught:
        client.insert_object(objects.loyalty_object(world.card))
    assert caught.value.status == 409 and not caught.value.retryable


def test_get_unknown_is_not_found(client):
    with pytest.raises(NotFound):
        client.get_object(f"{ISSUER}.card-0000")


def test_object_for_missing_class_is_permanent(world, client):
    with pytest.raises(PermanentError) as caught:
        client.insert_object(objects.loyalty_object(world.card))
    assert caught.value.status == 400


def test_purchase_balance_reaches_google_object(world, client, fake):
    client.upsert_class(world.program)
    client.upsert_object(world.card)
    oid = objects.object_id(world.card)
    before = fake.objects[oid]["loyaltyPoints"]["balance"]["int"]
    result = _buy(world.card, 2500, "sale-1")
    world.card.refresh_from_db()
    client.update_card_object(world.card, notify=True)
    assert result.balance > before
    assert fake.objects[oid]["loyaltyPoints"]["balance"] == {"int": result.balance}
    assert fake.objects[oid]["rotatingBarcode"]["totpDetails"]["parameters"][0]["valueLength"] == 8
    assert "notifyPreference" not in fake.objects[oid]
    patch = [m for m, p, _ in fake.requests if p.endswith(oid)]
    assert patch == ["PATCH"]


def test_update_inserts_when_object_missing(world, client, fake):
    client.upsert_class(world.program)
    client.update_card_object(world.card)
    assert objects.object_id(world.card) in fake.objects
    with pytest.raises(NotFound):
        world.card.number = "9999999999999995"
        client.update_card_object(world.card, insert_if_missing=False)


def test_rate_limited_surfaces_retry_after(world, client, fake):
    fake.fail(429, retry_after="17")
    with pytest.raises(RateLimited) as caught:
        client.upsert_class(world.program)
    assert caught.value.retry_after == 17.0 and caught.value.retryable and caught.value.status == 429
    assert not fake.classes  # nothing was written, and the client did not retry by itself
    client.upsert_class(world.program)
    assert fake.classes


def test_server_error_is_retryable(world, client, fake):
    fake.fail(500)
    with pytest.raises(ServerError) as caught:
        client.get_class(objects.class_id(world.program))
    assert caught.value.retryable and caught.value.status == 500
    assert sum(1 for m, p, _ in fake.requests if "/loyaltyClass" in p) == 1


def test_fake_refuses_bad_token(fake):
    response = httpx.get(f"{fake.api_base_url}/loyaltyClass/x", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_client_with_refused_token_raises_unauthorized(world, google_settings, fake):
    class ForgedCredentials:
        invalidated = 0

        def token(self):
            return "ya29.forged"

        def invalidate(self):
            self.invalidated += 1

    creds = ForgedCredentials()
    with GoogleWalletClient(fake.api_base_url, creds) as c, pytest.raises(Unauthorized):
        c.upsert_class(world.program)
    assert creds.invalidated == 1 and not fake.classes


def test_revoked_token_is_refreshed_once(world, client, fake):
    client.upsert_class(world.program)
    fake.tokens.clear()  # the cached token is no longer valid
    client.upsert_object(world.card)
    assert fake.token_requests == 2 and objects.object_id(world.card) in fake.objects


def test_connection_is_reused(world, client, fake):
    client.upsert_class(world.program)
    client.upsert_object(world.card)
    client.get_object(objects.object_id(world.card))
    api_ports = {addr[1] for m, p, addr in fake.requests if p.startswith("/walletobjects")}
    assert len(api_ports) == 1


def test_parse_retry_after_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None
