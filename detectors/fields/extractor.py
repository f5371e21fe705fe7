"""Which extractions serve a sourcetype, what they find in an event, and what they can name."""

from __future__ import annotations

from collections.abc import Sequence

from detectors.fields.jsonpath import CLOUDTRAIL, JSON, extract_json
from detectors.fields.model import Fields, SourcetypeExtraction
from detectors.fields.syslog import LINUX_SECURE, SMARTD, SYSLOG
from detectors.fields.web import ACCESS, ERRORS
from detectors.fields.windows import WINDOWS

BUILTIN: tuple[SourcetypeExtraction, ...] = (
    LINUX_SECURE,
    SYSLOG,
    SMARTD,
    WINDOWS,
    ACCESS,
    ERRORS,
    CLOUDTRAIL,
    JSON,
)

ANY_FIELD = "*"
"""In :func:`producible_fields`: the sourcetype's events are JSON, any key may appear."""


class FieldExtractor:
    """The shipped extractions plus a user's (theirs first: their fields win).

    ``extract`` is pure and thread-safe; the per-sourcetype lookup is memoised.
    """

    def __init__(self, user: Sequence[SourcetypeExtraction] = ()) -> None:
        self._specs = (*user, *BUILTIN)
        self._by_sourcetype: dict[str, tuple[SourcetypeExtraction, ...]] = {}
        self.user = tuple(user)

    def specs(self, sourcetype: str) -> tuple[SourcetypeExtraction, ...]:
        """The extractions serving ``sourcetype``, the user's first."""
        key = sourcetype.lower()
        found = self._by_sourcetype.get(key)
        if found is None:
            found = tuple(s for s in self._specs if s.serves(sourcetype))
            if CLOUDTRAIL in found and JSON in found:
                found = tuple(s for s in found if s is not JSON)
            if len(self._by_sourcetype) < 4096:
                self._by_sourcetype[key] = found
        return found

    def extract(self, sourcetype: str, raw: str) -> Fields:
        """Every field the extractions for ``sourcetype`` find in ``raw`` (first one wins).

        Any event whose text is a JSON object also gets its keys, whatever its sourcetype.
        """
        specs = self.specs(sourcetype)
        if len(specs) == 1:
            found = specs[0].extract(raw)  # a fresh dict
            json_done = specs[0].open_ended
        else:
            found = {}
            json_done = False
            for spec in specs:
                for key, value in spec.extract(raw).items():
                    if key not in found:
                        found[key] = value
                json_done = json_done or spec.open_ended
        if not json_done and raw[:1] in ("{", " ", "\t", "\n", "[") and raw.lstrip()[:1] == "{":
            for key, value in extract_json(raw).items():
                if key not in found:
                    found[key] = value
        return found

    def producible(self, sourcetype: str) -> frozenset[str]:
        names: set[str] = set()
        for spec in self._specs:
            if spec.serves(sourcetype) or ("*" in sourcetype and _overlaps(spec, sourcetype)):
                names |= spec.fields
                if spec.open_ended:
                    names.add(ANY_FIELD)
        return frozenset(names)


def _overlaps(spec: SourcetypeExtraction, pattern: str) -> bool:
    """A query's ``sourcetype=WinEventLog:*`` covers the extraction of ``WinEventLog:Security``."""
    from detectors.fields.model import sourcetype_matches

    return any(sourcetype_matches(pattern, own.replace("*", "x")) for own in spec.sourcetypes)


DEFAULT = FieldExtractor()


def producible_fields(sourcetype: str, extractor: FieldExtractor | None = None) -> frozenset[str]:
    """The fields the extractions for ``sourcetype`` can produce (shipped, plus the user's when
    ``extractor`` carries them). ``"*"`` is in the set when the events are JSON and any key may
    appear. ``key=value`` pairs, extracted from every event, are not counted."""
    return (extractor or DEFAULT).producible(sourcetype)
