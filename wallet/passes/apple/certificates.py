"""The pass signing material: the Pass Type ID certificate, its private key and Apple's WWDR intermediate.

Paths come from settings.APPLE_WALLET. In production they hold the certificate Apple issued for the
pass type identifier and the WWDR G4 intermediate downloaded from Apple PKI. `generate_dev_set` makes a
self-signed stand-in (a local CA in the WWDR role and a pass certificate it signed) for development
and tests only: Wallet on a real device rejects passes signed with it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class PassCredentials:
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    wwdr_certificate: x509.Certificate


def load_pass_credentials() -> PassCredentials:
    """The configured certificate, key and WWDR intermediate (cached per set of paths and file versions)."""
    config = settings.APPLE_WALLET
    paths = (config["CERTIFICATE_PATH"], config["KEY_PATH"], config["WWDR_CERTIFICATE_PATH"])
    versions = []
    for path in paths:
        try:
            stat = Path(path).stat()
        except (OSError, TypeError) as error:
            raise ImproperlyConfigured(
                f"Apple Wallet signing file missing: {path!r}. "
                "In development run `manage.py make_dev_pass_certificates`."
            ) from error
        versions.append((stat.st_mtime_ns, stat.st_size))
    return _load(paths, tuple(versions), config.get("KEY_PASSWORD") or "")


@lru_cache(maxsize=8)
def _load(paths: tuple[str, str, str], _versions: tuple, password: str) -> PassCredentials:
    certificate_path, key_path, wwdr_path = paths
    certificate = x509.load_pem_x509_certificate(Path(certificate_path).read_bytes())
    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=password.encode() or None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ImproperlyConfigured("The pass key must be an RSA or EC private key.")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():
        raise ImproperlyConfigured("The pass key does not belong to the pass certificate.")
    wwdr = x509.load_pem_x509_certificate(Path(wwdr_path).read_bytes())
    return PassCredentials(certificate=certificate, private_key=key, wwdr_certificate=wwdr)


@dataclass(frozen=True)
class DevCertificateSet:
    wwdr_pem: bytes
    certificate_pem: bytes
    key_pem: bytes


def generate_dev_set(pass_type_identifier: str, team_identifier: str, *, key_password: str = "") -> DevCertificateSet:
    """A development-only CA standing in for Apple WWDR, and a pass certificate it signed.

    The pass certificate's subject carries UID=<pass type identifier> and OU=<team identifier>, as
    Apple's Pass Type ID certificates do. Never use this set in production.
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "Tessera DEVELOPMENT WWDR stand-in (not Apple)"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tessera development"),
    ])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pass_name = x509.Name([
        x509.NameAttribute(NameOID.USER_ID, pass_type_identifier),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_identifier}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_identifier),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tessera development"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])
    pass_cert = (
        x509.CertificateBuilder()
        .subject_name(pass_name)
        .issuer_name(ca_name)
        .public_key(pass_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(key_password.encode()) if key_password else serialization.NoEncryption()
    )
    return DevCertificateSet(
        wwdr_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        certificate_pem=pass_cert.public_bytes(serialization.Encoding.PEM),
        key_pem=pass_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
    )
