"""Field extraction per sourcetype: the shipped extractions (named as Splunk's CIM and add-ons
name the fields) and a user's own, loaded from a props-like YAML file. See
docs/field-extraction.md.

    extractor = load_extractor([Path("extractions.yaml")])   # raises ExtractionFileError
    extractor.extract("linux_secure", raw)                    # {"src": ..., "user": ...}
    producible_fields("linux_secure")                         # frozenset({"src", ...})
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detectors.fields.extractor import (
    ANY_FIELD,
    BUILTIN,
    DEFAULT,
    FieldExtractor,
    producible_fields,
)
from detectors.fields.model import Fields, Pattern, SourcetypeExtraction
from detectors.fields.user import ExtractionFileError, load_extraction_files, read_extractions


def load_extractor(paths: Sequence[Path]) -> FieldExtractor:
    """The shipped extractions plus those in ``paths``; raises ExtractionFileError listing
    every problem as ``file:line: message``."""
    if not paths:
        return DEFAULT
    found, problems = load_extraction_files(paths)
    if problems:
        raise ExtractionFileError(problems)
    return FieldExtractor(found)


__all__ = [
    "ANY_FIELD",
    "BUILTIN",
    "DEFAULT",
    "ExtractionFileError",
    "FieldExtractor",
    "Fields",
    "Pattern",
    "SourcetypeExtraction",
    "load_extraction_files",
    "load_extractor",
    "producible_fields",
    "read_extractions",
]
