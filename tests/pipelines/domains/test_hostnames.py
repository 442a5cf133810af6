"""Hostname validation on literal inputs."""

from __future__ import annotations

import pytest

from pipelines.domains.hostnames import normalize_hostname, verification_record_name
from pipelines.errors import InvalidInput


@pytest.mark.parametrize(
    ("given", "ascii_form", "unicode_form", "wildcard"),
    [
        ("Shop.Example.COM.", "shop.example.com", "shop.example.com", False),
        ("bücher.example.de", "xn--bcher-kva.example.de", "bücher.example.de", False),
        ("xn--bcher-kva.example.de", "xn--bcher-kva.example.de", "bücher.example.de", False),
        ("*.shop.example.com", "*.shop.example.com", "*.shop.example.com", True),
    ],
)
def test_valid_hostnames_are_normalised(
    given: str, ascii_form: str, unicode_form: str, wildcard: bool
) -> None:
    name = normalize_hostname(given)
    assert (name.ascii, name.unicode, name.wildcard) == (ascii_form, unicode_form, wildcard)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "give a hostname"),
        ("192.0.2.10", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("2001:db8::1", "IP address"),
        ("localhost", "one label"),
        ("a." + "b" * 64 + ".com", "longer than 63"),
        (".".join(["abcdefghi"] * 26) + ".com", "longer than 253"),
        ("shop.*.example.com", "wildcard"),
        ("-shop.example.com", "not a valid hostname"),
        ("shop_1.example.com", "not a valid hostname"),
        ("example.123", "numeric"),
        ("app.streamflow.dev", "belong to the platform"),
        ("streamflow.dev", "belong to the platform"),
    ],
)
def test_invalid_hostnames_name_the_field_and_the_fix(given: str, says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        normalize_hostname(given, platform_suffixes=["streamflow.dev"])
    assert raised.value.field == "hostname"
    assert says in str(raised.value)


def test_a_lookalike_of_a_platform_name_is_not_platform_owned() -> None:
    assert normalize_hostname("notstreamflow.dev", platform_suffixes=["streamflow.dev"])


def test_a_wildcard_is_verified_on_its_base_name() -> None:
    assert verification_record_name("*.shop.example.com") == (
        "_streamflow-verification.shop.example.com"
    )
