"""Slow hashes for what we must check but never store: device and API keys, cashier PINs (passlib).

Two costs, because the secrets differ. A cashier PIN has at most 10^8 values, so its hash must be
expensive to guess offline: Argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane), about 0.1 s
here. A device key carries 256 random bits; no hash cost changes how hard it is to guess, and it is
checked on every POS request, so it gets a light Argon2id (8 MiB, 1 pass, ~15 ms here). Hashes
store their parameters, and `verify_and_update` re-hashes an old one at the next successful check.
"""
from passlib.context import CryptContext

PINS = CryptContext(schemes=["argon2"], argon2__memory_cost=19456, argon2__rounds=2, argon2__parallelism=1)
RANDOM_KEYS = CryptContext(schemes=["argon2"], argon2__memory_cost=8192, argon2__rounds=1, argon2__parallelism=1)
