"""Turning what an agent types into a SIP request URI.

Agents type numbers the way customers say them ("0470 12 34 56", "+1 (415) 555-0100");
the PBX wants E.164. SIP and tel: URIs pass through untouched (tel: becomes a sip: URI in
the account's domain, because pjsua routes only sip: URIs through the account).
"""

from __future__ import annotations

import logging
import re

import phonenumbers

log = logging.getLogger(__name__)

_SIP = re.compile(r"^sips?:", re.IGNORECASE)
_TEL = re.compile(r"^tel:", re.IGNORECASE)
_USER = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%-]+$")


class NumberError(ValueError):
    """The target is neither a SIP/tel URI nor a number phonenumbers can read."""


def to_e164(number: str, region: str | None = None) -> str:
    """Normalise a dialled number to E.164 ("+3247012345").

    Args:
        number: digits as typed, with or without "+", spaces, dashes, brackets.
        region: ISO country for numbers without "+", e.g. "BE"; None requires "+".

    Raises:
        NumberError: phonenumbers cannot parse it or it is not a possible number.
    """
    try:
        parsed = phonenumbers.parse(number, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(f"{number!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise NumberError(f"{number!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def to_sip_uri(target: str, domain: str, region: str | None = None) -> str:
    """The request URI for `target`, dialled through an account in `domain`.

    A sip:/sips: URI is used as is; tel:NUMBER and bare numbers become sip:E164@domain;
    anything else that looks like a SIP user part (an extension, "echo") becomes
    sip:user@domain.

    Raises:
        NumberError: the target is empty or cannot be made into a URI.
    """
    target = target.strip()
    if not target:
        raise NumberError("nothing to dial")
    if _SIP.match(target):
        return target
    if _TEL.match(target):
        number = target[4:].split(";", 1)[0]
        return f"sip:{to_e164(number, region)}@{domain}"
    digits = re.sub(r"[\s().-]", "", target)
    if re.fullmatch(r"\+?\d{2,}", digits) and (digits.startswith("+") or region):
        return f"sip:{to_e164(target, region)}@{domain}"
    if _USER.match(target):
        return f"sip:{target}@{domain}"
    raise NumberError(f"{target!r} is neither a SIP URI nor a phone number")
