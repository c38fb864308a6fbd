"""Redaction of open-feedback texts: personal data out before the text is stored.

The feedback form is anonymous by construction: no account, no cookie, no address is kept, so the
stored text must not carry identity data either, whatever the writer typed into it. Before anything
else sees a text (the store, the theme methods, staff), each of these is replaced by a marker and
counted:

- ``id``: Finnish personal identity codes (henkilötunnus), DDMMYY, century sign, three-digit
  individual number and control character, in either case. Only a code whose control character is
  right is removed; a code-shaped string with a wrong one is a near-miss (a reference, a typo) and
  stays, as the specification of the code says it cannot be anyone's.
- ``email``: addresses with a local part, ``@`` and a dotted domain. ``@hoitajat`` is not one.
- ``phone``: Finnish and Swedish national numbers (a leading 0, area code optionally in brackets,
  7 to 12 digits in groups separated by single spaces or dashes: ``040 123 4567``, ``(09) 310 1234``,
  ``070-123 45 67``, ``08-123 456 78``) and international ones (``+``, 8 to 15 digits,
  ``+358 40 123 4567``, ``+46 (0)70 123 45 67``).
- ``address``: a capitalised Finnish or Swedish street name (``Hämeenkatu``, ``Koivukuja``,
  ``Storgatan``, ``Itäinen Pitkäkatu``, ``Mannerheimin tie``) followed by a house number, with an
  optional staircase, flat and postal code with town (``Mannerheimintie 12 B 34, 00100 Helsinki``);
  an English house number followed by capitalised words and a street word (``12 Baker Street``).
  Of "Aleksis Kiven katu 5" the first name stays: a capitalised word before a street is taken for
  the start of the sentence unless it is one of a few street prefixes (Itäinen, Vanha, Östra…).

Deliberately not recognised, because feedback is full of them and they identify no one: dates
(``12.3.2024``), times and ranges (``klo 14.30``, ``8-16``, ``0-10``), durations, amounts, room and
order numbers, years, the helpline ``116 117`` and ``112`` (no national number starts with 1), a
street named without a house number, and postal codes on their own. Not recognised either, as no
pattern tells them from ordinary words: inflected street names (``Hämeenkadulla 5``), street names
typed in lower case, and names of people. Over-removal is preferred to a leak: a number written
with a leading 0 and 7 or more digits is taken for a phone number, and a capitalised compound
ending in a street word followed by a number (``Våningsplan 2``) for an address.

Every pattern is built so that a match attempt does a bounded amount of work: repetitions are
bounded or start only at the beginning of a run of their characters, so a long hostile input costs
linear time. Digits are ``[0-9]``: other scripts' digits are no phone number here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

KINDS = ("id", "phone", "email", "address")
MARKERS = {"id": "[ID]", "phone": "[PHONE]", "email": "[EMAIL]", "address": "[ADDRESS]"}

_CONTROL = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_CENTURY = "+-ABCDEFYXWVU"

_HETU = re.compile(r"(?<![0-9A-Za-z])[0-9]{6}[-+A-FU-Ya-fu-y][0-9]{3}[0-9A-Za-z](?![0-9A-Za-z])")

# The local part starts only where its run of characters starts, so a long run without "@" is
# scanned once, not once per position.
_EMAIL_CH = "A-Za-z0-9À-ÖØ-öø-ÿ._%+-"
_EMAIL = re.compile(
    rf"(?<![{_EMAIL_CH}])[{_EMAIL_CH}]+@(?:[A-Za-z0-9À-ÖØ-öø-ÿ-]+\.)+[A-Za-z]{{2,}}(?![A-Za-z0-9À-ÖØ-öø-ÿ-])"
)

# International: "+", a country code, an optional "(0)", then groups; later groups have two or
# more digits so that "… 4567 2 kertaa" keeps its "2".
_PHONE_INTL = re.compile(
    r"(?<![0-9A-Za-z+])\+[0-9]{1,3}(?:[ -]?\(0\))?[ -]?[0-9]{1,4}(?:[ -]?[0-9]{2,4}){1,5}(?![0-9])"
)
# National: a leading 0 ("puh0401234567" too). Not right after a digit and a separator, so
# "1 000 000 000" and "2024-05-03" are not read as numbers.
_PHONE_NAT = re.compile(
    r"(?<![0-9+])(?<![0-9][ .,-])(?:\(0[0-9]{1,3}\)|0[0-9]{1,3})(?:[ -]?[0-9]{2,4}){1,4}(?![0-9A-Za-z])"
)

_UP = "A-ZÅÄÖ"
_LOW = "a-zåäöéü"
_FI_END = "katu|tie|kuja|polku|väylä|raitti|kaari|rinne|tori|ranta|mäki|puisto|aukio|portti|tanhua|piha"
_SV_END = "gatan|gata|vägen|väg|gränden|gränd|stigen|torget|backen|allén|allé|plan|kajen|kaj"
# Street words that also stand apart after a genitive ("Aleksis Kiven katu", "Gamla vägen"); "piha"
# or "plan" apart is a yard or a floor ("Sairaalan piha 2").
_SEPARATE_END = "katu|tie|kuja|gatan|gata|vägen|väg"
# Words that begin a two-word street name ("Itäinen Pitkäkatu", "Östra Storgatan"); any other
# capitalised word before a street may be the start of the sentence, and stays.
_STREET_PREFIX = (
    "Itäinen|Läntinen|Pohjoinen|Eteläinen|Vanha|Uusi|Iso|Pikku|Östra|Västra|Norra|Södra|Stora|Lilla|Gamla|Nya"
)
_STREET = (
    rf"(?:(?:{_STREET_PREFIX})[ ])?"
    rf"(?:[{_UP}][{_LOW}-]*(?:{_FI_END}|{_SV_END})"  # Hämeenkatu, Storgatan
    rf"|[{_UP}][{_LOW}]+[ ](?:{_SEPARATE_END}))"  # Kiven katu, Gamla vägen
)
# The staircase and flat: "5b", "12B 34", "12 B", "12 B 34", "12 b 34", "3 as 4", "4 lgh 1203".
_FLAT = (
    r"(?:[A-Za-z](?:[ ]?[0-9]{1,3})?"
    r"|[ ][A-Z](?:[ ]?[0-9]{1,3})?"
    r"|[ ][a-z][ ]?[0-9]{1,3}"
    r"|[ ](?:as|asunto|lgh|bst|apt)\.?[ ]?[0-9]{1,4})?"
)
_POSTAL = r"(?:,?[ ]{1,3}(?:[0-9]{5}|[0-9]{3}[ ][0-9]{2})[ ]{1,3}[A-Za-zÅÄÖåäö]+(?:-[A-Za-zÅÄÖåäö]+)?)?"
_EN_STREET = "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Way|Close|Court|Crescent|Place|Terrace|Gardens|Square"
_ADDRESS = re.compile(
    rf"(?<![{_UP}{_LOW}0-9-])(?:{_STREET})[ ]{{1,3}}[1-9][0-9]{{0,3}}(?:-[0-9]{{1,4}})?{_FLAT}"
    rf"(?![0-9A-Za-zÅÄÖåäö]){_POSTAL}"
    rf"|(?<![0-9A-Za-z])[1-9][0-9]{{0,3}}[A-Za-z]?[ ](?:[A-Z][a-z'-]*[ ]){{1,3}}(?:{_EN_STREET})(?![A-Za-z])"
)


@dataclass(frozen=True, slots=True)
class Redacted:
    """A text with its personal data replaced by markers, and how many of each kind were removed."""

    text: str  # the text with each removal replaced by its marker
    counts: dict[str, int]  # kind -> removals (only kinds that occurred)

    @property
    def total(self) -> int:
        """All removals of every kind."""
        return sum(self.counts.values())


def hetu_ok(code: str) -> bool:
    """True when an 11-character code's control character is right."""
    if len(code) != 11:
        return False
    code = code.upper()
    number = code[:6] + code[7:10]
    if not (number.isascii() and number.isdigit()) or code[6] not in _CENTURY:
        return False
    return _CONTROL[int(number) % 31] == code[10]


def _digits(text: str) -> int:
    return sum(ch in "0123456789" for ch in text)


def _intl_ok(match: str) -> bool:
    return 8 <= _digits(match.replace("(0)", "")) <= 15


def _national_ok(match: str) -> bool:
    return 7 <= _digits(match) <= 12


_Accept = Callable[[str], bool] | None
_RULES: tuple[tuple[str, re.Pattern[str], _Accept], ...] = (
    ("id", _HETU, hetu_ok),
    ("email", _EMAIL, None),
    ("phone", _PHONE_INTL, _intl_ok),
    ("phone", _PHONE_NAT, _national_ok),
    ("address", _ADDRESS, None),
)


def _replace(text: str, pattern: re.Pattern[str], marker: str, accept: _Accept) -> tuple[str, int]:
    """``text`` with each accepted match of ``pattern`` replaced by ``marker``, and how many were.

    After a refused match the search goes on from its second character, so a valid match that
    starts inside it is still found; the markers hold no digit and no "@", so no later rule matches them.
    """
    parts: list[str] = []
    kept = pos = removed = 0
    while (m := pattern.search(text, pos)) is not None:
        if accept is None or accept(m.group()):
            parts += (text[kept : m.start()], marker)
            kept = pos = m.end()
            removed += 1
        else:
            pos = m.start() + 1
    parts.append(text[kept:])
    return "".join(parts), removed


def redact(text: str) -> Redacted:
    """Replace identity codes, e-mail addresses, phone numbers and street addresses by markers."""
    counts = dict.fromkeys(KINDS, 0)
    for kind, pattern, accept in _RULES:
        if kind == "email" and "@" not in text:
            continue
        text, n = _replace(text, pattern, MARKERS[kind], accept)
        counts[kind] += n
    return Redacted(text, {kind: n for kind, n in counts.items() if n})
