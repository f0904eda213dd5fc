"""`router.channels.config` and the pure parts of SMS and identities: secrets never printed,
half-configured channels refused, Twilio signatures, E.164."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from router.channels.config import (
    ChannelConfigError,
    Secret,
    add_channel_args,
    channels_config,
    read_secrets,
)
from router.channels.identities import e164, email_address
from router.channels.sms import signature, valid_signature


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_channel_args(parser)
    return parser.parse_args(list(argv))


def test_no_channel_flags_means_no_channels() -> None:
    config = channels_config(_args(), environ={})
    assert not config.any


def test_secrets_come_from_the_environment_and_the_file_wins(tmp_path: Path) -> None:
    path = tmp_path / "secrets"
    path.write_text("# comment\n\nSWITCHBOARD_TWILIO_AUTH_TOKEN = from-file\n")
    found = read_secrets(
        path,
        {
            "SWITCHBOARD_TWILIO_AUTH_TOKEN": "from-env",
            "SWITCHBOARD_IMAP_PASSWORD": "imap",
            "OTHER": "x",
        },
    )
    assert found == {
        "SWITCHBOARD_TWILIO_AUTH_TOKEN": "from-file",
        "SWITCHBOARD_IMAP_PASSWORD": "imap",
    }


def test_a_bad_secrets_line_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "secrets"
    path.write_text("TWILIO=hunter2\n")
    with pytest.raises(ChannelConfigError) as caught:
        read_secrets(path, {})
    assert "hunter2" not in str(caught.value) and "line 1" in str(caught.value)
    with pytest.raises(ChannelConfigError, match="No such file"):
        read_secrets(tmp_path / "missing", {})


def test_half_configured_channels_are_refused_naming_what_is_missing() -> None:
    with pytest.raises(ChannelConfigError, match=r"--imap-host.*SWITCHBOARD_IMAP_PASSWORD"):
        channels_config(
            _args("--email-address", "s@x.example", "--imap-user", "s", "--smtp-host", "h"),
            environ={},
        )
    with pytest.raises(ChannelConfigError, match="--sms-number, SWITCHBOARD_TWILIO_AUTH"):
        channels_config(_args("--sms-account-sid", "AC1"), environ={})
    with pytest.raises(ChannelConfigError, match=r"E\.164"):
        channels_config(
            _args("--sms-account-sid", "AC1", "--sms-number", "12"),
            environ={"SWITCHBOARD_TWILIO_AUTH_TOKEN": "t"},
        )


def test_secrets_do_not_show_in_the_config_repr() -> None:
    config = channels_config(
        _args("--sms-account-sid", "AC1", "--sms-number", "+14155550100", "--chat"),
        environ={"SWITCHBOARD_TWILIO_AUTH_TOKEN": "tok-123"},
    )
    assert config.sms is not None and config.sms.auth_token.reveal() == "tok-123"
    assert "tok-123" not in repr(config) and "tok-123" not in f"{Secret('tok-123')}"
    assert config.queues() == ["support", "support"]


def test_twilio_signature_covers_url_and_sorted_params_with_port_variants() -> None:
    params = [("To", "+1"), ("Body", "hi"), ("From", "+2")]
    sig = signature("tok", "https://r.example/channels/sms/inbound", params)
    assert valid_signature("tok", "https://r.example/channels/sms/inbound", params, sig)
    assert valid_signature("tok", "https://r.example:443/channels/sms/inbound", params, sig)
    assert not valid_signature(
        "tok", "https://r.example/channels/sms/inbound", [*params[:2], ("From", "+3")], sig
    )
    assert not valid_signature("other", "https://r.example/channels/sms/inbound", params, sig)
    assert not valid_signature("tok", "https://r.example/channels/sms/inbound", params, None)


def test_identities_are_normalised() -> None:
    assert e164("+1 (415) 555-0134") == "+14155550134"
    assert e164("4155550134") is None and e164("+1 555") is None
    assert email_address("Ann <Ann@Example.COM>") == "ann@example.com"
    assert email_address("nobody") is None and email_address("a@localhost") is None
