"""What an incident looks like to the similarity index: a bag of tokens from what the bot has.

The rule, the labels, the log templates mined from the evidence and the root-cause text. Tokens
carry a prefix naming where they came from (``rule:``, ``label:``, ``tpl:``, ``rca:``), so a word
in a template and the same word in a label count apart. Masked parts of templates (``<NUM>``,
``<IP>`` …) and very short words are dropped: they say nothing about what happened.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z][a-z0-9_.\-/]*[a-z0-9]|[a-z]")
_MASK = re.compile(r"<[A-Z*]+>")
_STOP = frozenset(
    {
        "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for", "is", "was", "by",
        "with", "from", "as", "be", "it", "this", "that", "not", "no",
    }
)  # fmt: skip
# labels that name where, not what: they vary between two occurrences of the same trouble
PLACE_LABELS = frozenset({"host", "hostname", "instance", "node", "pod", "ip", "address"})


@dataclass(frozen=True, slots=True)
class Profile:
    """The parts of an incident the index compares."""

    rule_id: str
    title: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    templates: tuple[tuple[str, int], ...] = ()  # (log template, occurrences)
    rca_text: str = ""

    @classmethod
    def of(
        cls,
        rule_id: str,
        title: str = "",
        labels: Mapping[str, object] | None = None,
        templates: Sequence[tuple[str, int]] = (),
        rca_text: str = "",
    ) -> Profile:
        pairs = tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items()))
        return cls(rule_id, title, pairs, tuple((t, int(n)) for t, n in templates), rca_text)


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` with masks and stop words removed."""
    cleaned = _MASK.sub(" ", text).lower()
    return [w for w in _WORD.findall(cleaned) if len(w) > 1 and w not in _STOP]


def tokens(profile: Profile) -> list[str]:
    """The profile's tokens, repeated where they should weigh more (the rule, the templates)."""
    out = [f"rule:{profile.rule_id}"] * 3
    out += [f"title:{w}" for w in words(profile.title)]
    for key, value in profile.labels:
        if key.lower() in PLACE_LABELS:
            continue
        out.append(f"label:{key}={value}".lower())
    for template, count in profile.templates:
        # a template seen often is what the incident is about; one seen once may be noise
        weight = 1 + int(math.log2(max(1, count)))
        ws = words(template)
        out += [f"tpl:{w}" for w in ws] * weight
        out += [f"tpl:{a}+{b}" for a, b in itertools.pairwise(ws)] * weight
    out += [f"rca:{w}" for w in words(profile.rca_text)]
    return out


def document(profile: Profile) -> str:
    """The tokens as one stored string (space separated; tokens never contain blanks)."""
    return " ".join(t.replace(" ", "_") for t in tokens(profile))


__all__ = ["PLACE_LABELS", "Profile", "document", "tokens", "words"]
