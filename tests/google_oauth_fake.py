"""Google's OAuth token endpoint as the tests' fakes check it (service-account JWT bearer grant, RS256):
shared by the Google Wallet and FCM fakes, which differ only in the scope they require."""
from urllib.parse import parse_qs

import jwt

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def jwt_grant_error(raw: bytes, *, public_key_pem, token_url: str, client_email: str, scope: str) -> dict | None:
    """None when the token request is one Google would grant, else the OAuth error body (for a 400)."""
    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    if form.get("grant_type") != GRANT_TYPE:
        return {"error": "unsupported_grant_type"}
    try:
        claims = jwt.decode(
            form.get("assertion", ""), public_key_pem, algorithms=["RS256"],
            audience=token_url, options={"require": ["iss", "aud", "iat", "exp", "scope"]},
        )
    except jwt.InvalidTokenError as exc:
        return {"error": "invalid_grant", "error_description": str(exc)}
    if claims["iss"] != client_email:
        return {"error": "invalid_grant", "error_description": "Invalid issuer"}
    if claims["exp"] - claims["iat"] > 3600:
        return {"error": "invalid_grant", "error_description": "Invalid JWT lifetime"}
    if scope not in str(claims["scope"]).split():
        return {"error": "invalid_scope", "error_description": f"missing scope {scope}"}
    return None
