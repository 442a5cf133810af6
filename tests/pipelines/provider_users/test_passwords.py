"""Password hashes: scrypt with a salt, checked in constant time, cost kept in the hash."""

from __future__ import annotations

import hashlib

import pytest

from pipelines.provider_users.passwords import check_strength, hash_password, verify_password


def test_a_hash_verifies_its_password_and_nothing_else() -> None:
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)
    assert not verify_password("", stored)


def test_the_hash_is_scrypt_with_its_parameters_and_a_fresh_salt() -> None:
    salt = bytes(range(16))
    stored = hash_password("correct horse battery", salt=salt)
    scheme, cost, block, parallel, salt_hex, digest = stored.split("$")
    assert (scheme, cost, block, parallel, salt_hex) == ("scrypt", "16384", "8", "1", salt.hex())
    expected = hashlib.scrypt(
        b"correct horse battery", salt=salt, n=16384, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32
    )
    assert digest == expected.hex()
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


@pytest.mark.parametrize("stored", ["", "md5$x", "scrypt$1$2$3$zz$00", "scrypt$a$b$c$d$e"])
def test_a_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not verify_password("anything at all", stored)


def test_short_and_huge_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        check_strength("short")
    with pytest.raises(ValueError, match="at most 1024"):
        check_strength("x" * 1025)
    check_strength("twelve chars")
