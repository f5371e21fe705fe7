"""A :class:`~bot.postmortem.Postmortem` as Markdown: a draft to paste into a postmortem page."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.durations import format_duration
from bot.postmortem import CHECKLIST, Entry, Postmortem


def _at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "not yet"


def _took(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else "—"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(entries: tuple[Entry, ...]) -> list[str]:
    lines = [
        "| When | Who | Via | What | Result | Detail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        lines.append(
            f"| {e.at:%H:%M:%S} | {_cell(e.actor)} | {_cell(e.surface)} | {e.action} "
            f"| {e.result} | {_cell(e.text)} |"
        )
    return lines


def to_markdown(pm: Postmortem) -> str:
    out = [f"# {pm.incident}: {pm.title}", ""]
    out += [
        "## Summary",
        "",
        f"- Severity: {pm.severity}",
        f"- Service: {pm.service or '—'}   Host: {pm.host or '—'}",
        f"- Rule: {pm.rule}",
        f"- State: {pm.state}" + (f" (by {pm.resolved_by})" if pm.resolved_by else ""),
        f"- Impact window: {_at(pm.first_seen)} to {_at(pm.resolved_at)}",
        f"- Time to acknowledge: {_took(pm.time_to_acknowledge)}",
        f"- Time to resolve: {_took(pm.time_to_resolve)}",
        "",
        "## Detection",
        "",
    ]
    d = pm.detection
    if d is None:
        out.append("No detection entry on the audit chain.")
    else:
        out += [
            f"- Rule: {d.rule}",
            f"- Window: {d.window_start} to {d.window_end}",
            f"- Group: {d.group or '—'} ({d.events} events)",
            "",
            "```",
            d.query,
            "```",
        ]
    out += ["", "## Root cause", ""]
    rc = pm.root_cause
    if rc is None:
        out.append("No analysis on the audit chain.")
    else:
        confidence = f", {rc.confidence:.0%}" if rc.confidence is not None else ""
        out += [f"{rc.summary or '(no summary)'} ({rc.engine}, {rc.status}{confidence})", ""]
        for c in rc.causes:
            cited = f" [{', '.join(c.evidence_ids)}]" if c.evidence_ids else ""
            out.append(f"- {c.text}{cited}")
        if rc.evidence:
            out += ["", "Evidence:", ""]
            out += [f"- `{e.id}` {e.time:%H:%M:%S} {_cell(e.text)}" for e in rc.evidence]
    out += ["", "## Actions", ""]
    out += _table(pm.actions) if pm.actions else ["Nobody acted on it."]
    out += ["", "## Playbook runs", ""]
    if not pm.runs:
        out.append("No playbook ran.")
    for r in pm.runs:
        out.append(
            f"- Run {r.run}: {r.playbook} on {r.target or '—'}, started by {r.started_by}: "
            f"**{r.outcome}** ({_cell(r.detail)})"
        )
        for s in r.steps:
            mark = "ok" if s.ok else "failed"
            said = _cell(s.error or s.output)
            label = "rollback " if s.phase == "rollback" else ""
            out.append(
                f"  - {label}{s.name}: {mark}, {s.attempts} attempt(s), {s.duration_ms:.0f} ms"
                + (f": {said}" if said else "")
            )
    out += ["", "## Timeline", ""]
    out += _table(pm.timeline)
    out += ["", "## Follow-ups", ""]
    out += [f"- [ ] {item}" for item in CHECKLIST]
    if pm.suggestions:
        out += ["", "Suggested by the record:", ""]
        out += [f"- [ ] {s}" for s in pm.suggestions]
    out += [
        "",
        f"_Drafted {_at(pm.generated_at)} from the audit chain"
        + ("" if pm.chain_intact else " (WARNING: the chain does not verify)")
        + "._",
        "",
    ]
    return "\n".join(out)
