"""``run_bot.py validate``: check rule, playbook, roles and settings files."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bot.errors import ConfigError
from bot.settings import Settings, load_settings

EXIT_OK, EXIT_FAILED = 0, 1


def validate(paths: Sequence[Path]) -> int:
    """``run_bot.py validate``: every problem as ``file:line: message``, then warnings and notes;
    exit 1 when there is a problem."""
    from detectors.inhibit_rules import inhibit_warnings, read_inhibit_rules
    from detectors.rules import inhibit_files, read_rules, rule_warnings
    from playbooks.loader import read_playbooks, split_paths

    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems.extend(f"settings: {line}" for line in str(exc).splitlines())
    rule_files, playbook_files = split_paths(paths)  # given paths: rule or playbook, by content
    rule_paths = [*(settings.rule_paths if settings else []), *rule_files]
    playbook_paths = [*(settings.playbook_paths if settings else []), *playbook_files]
    for missing in (p for p in [*rule_paths, *playbook_paths, *paths] if not p.exists()):
        problems.append(f"{missing}: no such file or folder")
    shipped = settings.shipped_rules if settings else True
    local_spl = settings is None or settings.search_backend == "local"
    existing = [p for p in rule_paths if p.exists()]
    rules, rule_problems = read_rules(existing, shipped, local_spl=local_spl)
    problems.extend(str(p) for p in rule_problems)
    extractor = None
    if settings is not None and settings.field_extraction_paths:
        from detectors.fields import load_extractor

        try:
            extractor = load_extractor(settings.field_extraction_paths)
        except ConfigError as exc:
            problems.append(str(exc))
    warnings = rule_warnings(rules, extractor)
    inhibit = inhibit_files(existing, shipped)
    problems.extend(str(p) for p in read_inhibit_rules(inhibit)[1])
    warnings.extend(inhibit_warnings(inhibit, rules))
    _, playbook_problems = read_playbooks(
        [p for p in playbook_paths if p.exists()],
        settings.shipped_playbooks if settings else True,
        rules,
    )
    problems.extend(str(p) for p in playbook_problems)
    if settings and settings.roles_file:
        from bot.authz import Roles

        try:
            Roles.load(settings.roles_file)
        except ConfigError as exc:
            problems.append(str(exc))
    notes = []
    if settings is None or settings.shared_searches:
        from detectors.feeds import why_not_shared

        for rule in rules:
            reason = why_not_shared(rule)
            if reason and reason != "disabled":
                notes.append(
                    f"{rule.source_file}:{rule.source_line}: note: rule {rule.id} runs its own "
                    f"search over its whole window (it cannot share one: {reason})"
                )
    for line in [*problems, *warnings, *notes]:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_FAILED
    print("all files are valid" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    return EXIT_OK


__all__ = ["validate"]
