"""``run_bot.py import-splunk``: turn the alerts of a ``savedsearches.conf`` into rule files.

Each stanza that converts is written as ``<id>.yaml`` in the output folder, but only once it
validates (as a rule for Splunk: its SPL need not be in the local engine's subset). Settings
left behind are listed at the top of the file and in the summary; stanzas that do not convert
are only listed in the summary, with the reason.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from detectors.rules import load_rules, validate_paths
from detectors.tools.splunk_alerts import Conversion, convert
from detectors.tools.splunk_conf import parse_conf


@dataclass(frozen=True, slots=True)
class Imported:
    conversion: Conversion
    written: Path | None = None
    problems: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        c = self.conversion
        head = f"[{c.stanza}] (line {c.line})"
        if self.written is not None:
            out = [f"{head} -> {self.written}"]
        elif c.rule is None:
            out = [f"{head} not converted:"]
            out += [f"    {reason}" for reason in c.reasons]
        else:
            out = [f"{head} converted but invalid, not written:"]
            out += [f"    {problem}" for problem in self.problems]
        out += [f"    left behind: {note}" for note in c.dropped]
        return out


@dataclass(frozen=True, slots=True)
class ImportReport:
    source: Path
    out: Path
    items: tuple[Imported, ...]
    conf_problems: tuple[str, ...] = ()

    @property
    def written(self) -> int:
        return sum(1 for item in self.items if item.written is not None)

    def text(self) -> str:
        lines = [f"{self.source}: {problem}" for problem in self.conf_problems]
        for item in self.items:
            lines += item.lines()
        lines.append(f"{self.written} of {len(self.items)} stanza(s) imported into {self.out}")
        return "\n".join(lines)


def import_savedsearches(source: Path, out: Path, category: str = "application") -> ImportReport:
    """Convert every stanza of ``source``, writing the valid rules into ``out``."""
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    stanzas, conf_problems = parse_conf(text)
    taken = {rule.id for rule in load_rules([])}
    items = []
    for stanza in stanzas:
        conversion = convert(stanza, taken, category)
        if conversion.rule is None:
            items.append(Imported(conversion))
            continue
        document = rule_yaml(conversion, source.name)
        problems = _problems(document)
        if problems:
            items.append(Imported(conversion, problems=problems))
            continue
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{conversion.rule['id']}.yaml"
        target.write_text(document, encoding="utf-8")
        items.append(Imported(conversion, written=target))
    return ImportReport(source, out, tuple(items), tuple(map(str, conf_problems)))


def _problems(document: str) -> tuple[str, ...]:
    with tempfile.TemporaryDirectory(prefix="import-") as folder:
        path = Path(folder) / "rule.yaml"
        path.write_text(document, encoding="utf-8")
        found = validate_paths([path], include_shipped=False, local_spl=False)
    return tuple(f"line {p.line}: {p.message}" for p in found)


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line text (queries, descriptions)."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def rule_yaml(conversion: Conversion, conf_name: str) -> str:
    """The rule file for a converted stanza, with what was left behind as comments on top."""
    rule: dict[str, Any] = conversion.rule or {}
    header = [f"# imported from {conf_name} [{conversion.stanza}]"]
    header += [f"# left behind: {' '.join(note.split())}" for note in conversion.dropped]
    body = yaml.dump(rule, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body
