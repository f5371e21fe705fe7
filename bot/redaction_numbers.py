"""Numbers that identify a person or an account: payment cards, IBANs and national ids.

Used by :mod:`bot.redaction`: cards go in every mode but ``off`` (application logs carry them,
and they must never reach a card or a model); IBANs and national ids in ``strict``. Each match
is checked before it goes, so ordinary numbers (order ids, timestamps, sector numbers) stay:

* a payment card: 13 to 19 digits, alone or in groups split by one kind of separator (spaces
  or dashes), starting like a card scheme's numbers (Visa, Mastercard, Amex, Discover, JCB,
  Diners, UnionPay, Maestro) and passing the Luhn check;
* an IBAN: a country code, two check digits and 11 to 30 letters or digits (grouped by four
  with spaces, or not), whose ISO 7064 mod 97 check holds;
* a US Social Security number written ``123-45-6789`` (not 000, 666 or 9xx, no zero group),
  and a UK National Insurance number (``QQ 12 34 56 C``, with the prefixes HMRC never issues
  left out).
"""

from __future__ import annotations

import re

CARD = "card"
IBAN = "iban"
NATIONAL_ID = "national-id"

_CARD = re.compile(r"(?<![\w\-.])(?:\d[ \-]?){12,18}\d(?![\w\-]|\.\d)")
_CARD_HINT = re.compile(r"\d{4}[ \-]?\d{4}[ \-]?\d{2}")
# (prefix, lengths) of the card schemes: Visa, Mastercard, Amex, Discover, JCB, Diners,
# UnionPay, Maestro
_SCHEMES = (
    (re.compile(r"4"), (13, 16, 19)),
    (re.compile(r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)"), (16,)),
    (re.compile(r"3[47]"), (15,)),
    (re.compile(r"6(?:011|5|4[4-9])"), (16, 17, 18, 19)),
    (re.compile(r"35(?:2[89]|[3-8]\d)"), (16, 17, 18, 19)),
    (re.compile(r"3(?:0[0-5]|[689])"), (14, 15, 16, 17, 18, 19)),
    (re.compile(r"62"), (16, 17, 18, 19)),
    (re.compile(r"5[06-9]|6\d"), (12, 13, 14, 15, 16, 17, 18, 19)),
)
_IBAN = re.compile(r"(?<![\w\-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w\-])")
_SSN = re.compile(r"(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-])")
_NINO = re.compile(
    r"(?<![\w\-])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"( ?)\d{2}\1\d{2}\1\d{2}\1[A-D](?![\w\-])"
)


def luhn(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check (payment card numbers do)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    """Whether ``text`` (digits, maybe grouped by spaces or dashes) is a payment card number."""
    separators = {char for char in text if not char.isdigit()}
    if len(separators) > 1:
        return False
    digits = "".join(char for char in text if char.isdigit())
    if not any(prefix.match(digits) and len(digits) in sizes for prefix, sizes in _SCHEMES):
        return False
    if separators and any(len(group) < 4 for group in re.split(r"[ \-]", text)[:-1]):
        return False  # cards group by 4 (Amex 4-6-5): "12 34 56…" is something else
    return luhn(digits)


def is_iban(text: str) -> bool:
    """Whether ``text`` is an IBAN whose mod 97 check holds."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


def redact_cards(text: str, marker: str) -> str:
    """``text`` with every payment card number replaced by ``marker``."""
    if not _CARD_HINT.search(text):
        return text
    return _CARD.sub(lambda m: marker if is_card_number(m[0]) else m[0], text)


def redact_ibans(text: str, marker: str) -> str:
    return _IBAN.sub(lambda m: marker if is_iban(m[0]) else m[0], text)


def redact_national_ids(text: str, marker: str) -> str:
    return _NINO.sub(marker, _SSN.sub(marker, text))


__all__ = [
    "CARD",
    "IBAN",
    "NATIONAL_ID",
    "is_card_number",
    "is_iban",
    "luhn",
    "redact_cards",
    "redact_ibans",
    "redact_national_ids",
]
