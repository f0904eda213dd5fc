"""What the agent types -> the request URI."""

from __future__ import annotations

import pytest

from softphone.numbers import NumberError, to_e164, to_sip_uri

pytestmark = pytest.mark.phone


@pytest.mark.parametrize(
    ("typed", "region", "uri"),
    [
        ("+1 (415) 555-0100", None, "sip:+14155550100@pbx.example"),
        ("0470 12 34 56", "BE", "sip:+32470123456@pbx.example"),
        ("tel:+44-20-7946-0958", None, "sip:+442079460958@pbx.example"),
        ("sip:queue@acd.example;transport=tcp", None, "sip:queue@acd.example;transport=tcp"),
        ("1001", None, "sip:1001@pbx.example"),
        ("echo", None, "sip:echo@pbx.example"),
    ],
)
def test_targets_become_uris(typed: str, region: str | None, uri: str) -> None:
    assert to_sip_uri(typed, "pbx.example", region) == uri


@pytest.mark.parametrize("typed", ["", "   ", "+1 (no digits)", "hello world", "+99 1"])
def test_nonsense_is_refused_in_words(typed: str) -> None:
    with pytest.raises(NumberError) as info:
        to_sip_uri(typed, "pbx.example")
    assert str(info.value)


def test_e164_needs_a_region_without_plus() -> None:
    assert to_e164("02 555 12 12", "be") == "+3225551212"
    with pytest.raises(NumberError):
        to_e164("02 555 12 12", None)
