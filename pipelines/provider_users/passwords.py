"""Password hashes for provider users: scrypt (RFC 7914) from the standard library.

A stored hash reads `scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`, so its cost can rise later
without invalidating the hashes already stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COST = 2**14
BLOCK_SIZE = 8
PARALLELISM = 1
MIN_LENGTH = 12
MAX_LENGTH = 1024
"""Longer input is refused rather than hashed: scrypt's cost grows with it."""


def check_strength(password: str) -> None:
    """ValueError unless the password is long enough to resist guessing."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"use at most {MAX_LENGTH} characters")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """The stored form of `password`, with a fresh random salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(password, salt, COST, BLOCK_SIZE, PARALLELISM)
    return f"scrypt${COST}${BLOCK_SIZE}${PARALLELISM}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (in constant time)."""
    try:
        scheme, cost, block_size, parallelism, salt, digest = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_LENGTH:
            return False
        computed = _scrypt(
            password, bytes.fromhex(salt), int(cost), int(block_size), int(parallelism)
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, bytes.fromhex(digest))


def _scrypt(password: str, salt: bytes, cost: int, block_size: int, parallelism: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=cost,
        r=block_size,
        p=parallelism,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )


UNKNOWN_USER_HASH = hash_password("not a password of anyone", salt=b"\x00" * 16)
"""Checked when the e-mail is unknown, so a wrong address costs as long as a wrong password."""
