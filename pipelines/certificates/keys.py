"""Keys and certificates as bytes (pure): encryption at rest, ECDSA P-256 keys, CSRs, parsing.

Secrets (the ACME account key, certificate private keys) are stored encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) under a key the caller takes from settings.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipelines.errors import InvalidInput


class SecretBox:
    """Encrypts and decrypts secrets at rest with one Fernet key."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as error:
            raise InvalidInput(
                "the secrets key must be 32 url-safe base64-encoded bytes (a Fernet key)",
                field="secrets_key",
            ) from error

    def seal(self, secret: bytes) -> str:
        return self._fernet.encrypt(secret).decode("ascii")

    def open(self, sealed: str) -> bytes:
        try:
            return self._fernet.decrypt(sealed.encode("ascii"))
        except InvalidToken as error:
            raise InvalidInput(
                "a stored secret does not decrypt with the configured secrets key; "
                "restore the key it was sealed with",
                field="secrets_key",
            ) from error


def new_secrets_key() -> str:
    """A fresh key for `SecretBox`."""
    return Fernet.generate_key().decode("ascii")


def new_private_key_pem() -> bytes:
    """A new ECDSA P-256 private key, PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_csr_pem(key_pem: bytes, hostnames: Sequence[str]) -> bytes:
    """A CSR for `hostnames` (all as DNS subject alternative names) signed by `key_pem`."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("certificate keys are ECDSA")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in hostnames]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedCertificate:
    """What the leaf of a PEM chain says about itself."""

    serial: str
    not_before: datetime
    not_after: datetime
    hostnames: tuple[str, ...]
    ari_id: str | None
    """The certificate's ACME Renewal Information id (RFC 9773), when it has an AKI."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def leaf_pem(chain_pem: str) -> str:
    """The first certificate of a PEM chain."""
    marker = "-----END CERTIFICATE-----"
    head, found, _ = chain_pem.partition(marker)
    if not found:
        raise ValueError("no certificate in the PEM chain")
    return head + marker + "\n"


def describe_certificate(chain_pem: str) -> IssuedCertificate:
    """Serial, validity, names and ARI id of the leaf of `chain_pem`."""
    cert = x509.load_pem_x509_certificate(leaf_pem(chain_pem).encode("ascii"))
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        hostnames = tuple(names.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        hostnames = ()
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        key_id = aki.value.key_identifier
    except x509.ExtensionNotFound:
        key_id = None
    serial_bytes = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    ari_id = f"{_b64(key_id)}.{_b64(serial_bytes)}" if key_id else None
    return IssuedCertificate(
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        hostnames=hostnames,
        ari_id=ari_id,
    )
