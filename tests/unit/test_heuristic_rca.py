from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.hits import Category, Evidence, Hit, Severity
from bot.domain.incident import Incident, State
from bot.domain.rca import RcaReport, RcaStatus
from bot.ports import RcaContext
from bot.redaction import Redactor
from integrations.heuristic import HeuristicRcaEngine

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

NOISE = [
    "GET /api/v1/orders 200 12ms",
    "2026-11-22T10:00:00Z host=web-1 service=checkout method=GET path=/api/cart status=200 "
    'latency_ms=35 upstream="10.0.3.12:8080" msg="ok"',
    "host=db-1 metric=cpu_pct value=23.4",
    "host=db-1 metric=mem_used_pct value=61",
    "host=db-1 metric=disk_used_pct mount=/var value=42",
    "host=db-1 metric=iowait_pct value=3",
    "host=db-1 metric=disk_write_mbps value=12",
    'EventCode=4624 LogName=Security TargetUserName=jdoe IpAddress=10.0.5.7 Message="An account '
    'was successfully logged on."',
    "Nov 22 10:00:00 nas-1 smartd[812]: Device: /dev/sda [SAT], SMART Usage Attribute: 194 "
    "Temperature_Celsius changed from 64 to 63",
    "   3 | 11/22/2026 | 10:05:05 | Temperature CPU1_Temp | Upper Critical going high | Deasserted",
    "Nov 22 10:00:02 web-1 sshd[2211]: Accepted publickey for deploy from 10.0.0.9 port 51234",
]


def evidence(lines: Sequence[str], start: datetime = T0, step_s: int = 10) -> list[Evidence]:
    out = []
    for i, line in enumerate(lines):
        hit = Hit(time=start + timedelta(seconds=step_s * i), fields={}, raw=line)
        out.append(Evidence(id=hit.id, time=hit.time, text=line))
    return out


def incident(
    number: int = 12,
    *,
    host: str = "web-1",
    service: str = "checkout",
    title: str = "Checkout 5xx",
    first_seen: datetime = T0,
    last_seen: datetime = T0 + timedelta(minutes=10),
) -> Incident:
    return Incident(
        id=number,
        group_key=f"rule|host={host}",
        rule_id="rule",
        title=title,
        severity=Severity.HIGH,
        category=Category.APPLICATION,
        service=service,
        host=host,
        owner="sre",
        state=State.OPEN,
        created_at=first_seen,
        updated_at=first_seen,
        first_seen=first_seen,
        last_seen=last_seen,
    )


async def explain(
    lines: Sequence[Evidence], related: Sequence[Incident] = (), inc: Incident | None = None
) -> RcaReport:
    return await HeuristicRcaEngine().explain(
        inc or incident(), lines, RcaContext(related=tuple(related))
    )


WEB_5XX = [
    f"2026-11-22T10:00:{i:02d}Z host=web-1 service=checkout method=GET path=/api/cart "
    f'status={502 if i % 4 == 0 else 503} latency_ms={2300 + i} upstream="10.0.3.12:8080" '
    'msg="upstream timed out"'
    for i in range(12)
] + [
    '10.0.0.5 - - [22/Nov/2026:10:00:13 +0000] "GET /api/cart HTTP/1.1" 502 157 "-" "curl/8.4.0"',
    "2026/11/22 10:00:14 [error] 31#31: *5 connect() failed (111: Connection refused) while "
    'connecting to upstream, client: 10.0.0.5, server: shop, request: "GET /api/cart HTTP/1.1", '
    'upstream: "http://10.0.3.12:8080/api/cart"',
]

HIGH_CPU = [f"host=db-1 metric=cpu_pct value={v}" for v in (91.2, 97.5, 99.0, 96.3)]

OOM = [
    "Nov 22 10:00:01 db-1 kernel: [812345.101] java invoked oom-killer: "
    "gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
    "Nov 22 10:00:01 db-1 kernel: [812345.180] Out of memory: Killed process 4242 (java) "
    "total-vm:8123456kB, anon-rss:7000000kB, file-rss:0kB, shmem-rss:0kB",
    "Nov 22 10:00:02 db-1 kernel: [812345.190] oom_reaper: reaped process 4242 (java), now "
    "anon-rss:0kB",
    "host=db-1 metric=mem_used_pct value=97.1",
]

SPRAY = [
    f"EventCode=4625 LogName=Security TargetUserName={user} IpAddress=203.0.113.9 "
    'Message="An account failed to log on."'
    for user in ("jdoe", "asmith", "bwayne", "ckent", "dprince", "administrator")
]

LOCKOUT = [
    "EventCode=4625 LogName=Security TargetUserName=svc_backup IpAddress=10.0.5.21 "
    'Message="An account failed to log on."'
] * 5

SHUTDOWN = [
    'EventCode=6008 LogName=System ComputerName=FS01 Message="The previous system shutdown at '
    '03:12:44 on 11/22/2026 was unexpected."',
    "EventCode=41 SourceName=Microsoft-Windows-Kernel-Power ComputerName=FS01 "
    'Message="The system has rebooted without cleanly shutting down first. This error could be '
    'caused if the system stopped responding, crashed, or lost power unexpectedly."',
]

DISK = [
    "host=db-1 metric=disk_used_pct mount=/var value=96.5",
    "host=db-1 metric=disk_used_pct mount=/var value=99.2",
    '2026-11-22T10:01:00Z host=db-1 postgres[1234]: PANIC: could not write to file "pg_wal/'
    'xlogtemp.1234": No space left on device',
]

SMART = [
    "Nov 22 10:00:00 nas-1 smartd[812]: Device: /dev/sda [SAT], SMART Usage Attribute: 5 "
    "Reallocated_Sector_Ct changed from 100 to 98",
    "Nov 22 10:30:00 nas-1 smartd[812]: Device: /dev/sda [SAT], SMART Prefailure Attribute: 5 "
    "Reallocated_Sector_Ct changed from 98 to 95",
    "Nov 22 10:30:00 nas-1 smartd[812]: Device: /dev/sda [SAT], 8 Currently unreadable (pending) "
    "sectors",
]

BMC = [
    "host=hv-3 sel: Temperature CPU1_Temp | Upper Critical going high | Asserted | reading 92 C",
    "   1 | 11/22/2026 | 10:00:05 | Fan FAN3 | Lower Critical going low | Asserted",
    "   2 | 11/22/2026 | 10:00:09 | Power Supply PS2 | Power Supply AC lost | Asserted",
]

IOWAIT = [
    "host=db-1 metric=iowait_pct value=62",
    "host=db-1 metric=iowait_pct value=71.5",
    "host=db-1 metric=disk_write_mbps value=480",
]


@pytest.mark.parametrize(
    ("lines", "title", "says"),
    [
        (WEB_5XX, "web 5xx burst", ["13 HTTP 5xx responses", "10.0.3.12:8080", "upstream timed"]),
        (HIGH_CPU, "high CPU", ["db-1", "99%"]),
        (OOM, "memory pressure / OOM", ["OOM killer", "java", "97.1%"]),
        (SPRAY, "failed-logon burst", ["6 different accounts", "password spraying"]),
        (LOCKOUT, "failed-logon burst", ["svc_backup", "old password"]),
        (SHUTDOWN, "unexpected shutdown", ["6008", "Kernel-Power 41", "FS01"]),
        (DISK, "disk filling", ["/var", "99.2%", "No space left on device"]),
        (SMART, "SMART reallocated sectors growing", ["/dev/sda"]),
        (BMC, "BMC thermal/fan/PSU warning", ["CPU1_Temp", "FAN3", "PS2", "92 C"]),
        (IOWAIT, "iowait spike with write burst", ["71.5%", "480 MB/s"]),
    ],
    ids=[
        "web-5xx",
        "cpu",
        "oom",
        "spray",
        "lockout",
        "shutdown",
        "disk",
        "smart",
        "bmc",
        "iowait",
    ],
)
async def test_known_pattern_is_named_and_cites_only_its_lines(
    lines: list[str], title: str, says: list[str]
) -> None:
    signal = evidence(lines)
    noise = evidence(NOISE, start=T0 + timedelta(minutes=5))
    report = await explain(signal + noise)

    assert report.status is RcaStatus.OK
    assert report.engine == "heuristic"
    assert report.summary.startswith(f"Most likely {title}:")
    top = report.causes[0]
    for fragment in says:
        assert fragment in top.text
    assert set(top.evidence_ids) <= {e.id for e in signal}  # never a noise line
    assert len(top.evidence_ids) == min(len(signal), 10)
    assert report.confidence == top.confidence == max(c.confidence for c in report.causes)
    assert report.recommendations


async def test_web_burst_reports_templates_with_counts() -> None:
    report = await explain(evidence(WEB_5XX + NOISE))
    template, count = report.templates[0]
    assert count == 12
    assert "upstream timed out" in template
    assert "<TIME>" in template  # timestamps are masked, not kept per line
    assert sum(n for _, n in report.templates) <= len(WEB_5XX) + len(NOISE)


async def test_confidence_grows_with_the_share_of_matching_lines() -> None:
    few = await explain(evidence(HIGH_CPU[:1] + NOISE))  # 1 of 12 lines
    many = await explain(evidence(HIGH_CPU + NOISE[:1]))  # 4 of 5 lines
    only = await explain(evidence(HIGH_CPU * 5))  # every line
    assert few.confidence == pytest.approx(0.4 + 0.5 / 12, abs=0.01)
    assert many.confidence == pytest.approx(0.8)
    assert only.confidence == 0.9
    assert few.confidence < many.confidence < only.confidence


async def test_citations_are_capped() -> None:
    lines = evidence([f"host=db-1 metric=cpu_pct value={90 + i % 10}" for i in range(40)])
    report = await explain(lines)
    assert len(report.causes[0].evidence_ids) == 10
    assert set(report.causes[0].evidence_ids) <= {e.id for e in lines}


async def test_single_account_from_many_sources_is_brute_force() -> None:
    lines = [
        f"EventCode=4625 LogName=Security TargetUserName=administrator IpAddress=198.51.100.{i} "
        'Message="An account failed to log on."'
        for i in range(1, 7)
    ]
    report = await explain(evidence(lines))
    assert "brute-force" in report.causes[0].text
    assert "administrator" in report.causes[0].text


async def test_ssh_failed_passwords_count_as_failed_logons() -> None:
    lines = [
        f"Nov 22 10:00:0{i} bastion-1 sshd[4{i}11]: Failed password for invalid user {user} "
        f"from 203.0.113.{40 + i} port 5{i}022 ssh2"
        for i, user in enumerate(["admin", "oracle", "test", "ubuntu"])
    ]
    report = await explain(evidence(lines))
    assert report.summary.startswith("Most likely failed-logon burst:")
    assert "4 different accounts" in report.causes[0].text


async def test_two_failed_logons_are_not_a_burst() -> None:
    report = await explain(evidence(LOCKOUT[:2] + NOISE))
    assert report.status is RcaStatus.INSUFFICIENT_EVIDENCE
    assert report.causes == ()


async def test_several_patterns_are_ranked_by_share() -> None:
    report = await explain(evidence(DISK + IOWAIT[:1] + NOISE[:2]))
    titles = [c.text for c in report.causes]
    assert len(titles) == 2
    assert "Disk filling up" in titles[0]
    assert "I/O wait spike" in titles[1]
    assert report.causes[0].confidence > report.causes[1].confidence
    assert "Also seen: iowait spike with write burst." in report.summary


async def test_noise_gives_insufficient_evidence_not_an_invented_cause() -> None:
    report = await explain(evidence(NOISE))
    assert report.status is RcaStatus.INSUFFICIENT_EVIDENCE
    assert report.causes == ()
    assert report.recommendations == ()
    assert report.confidence == 0.0
    assert report.summary.startswith("Insufficient evidence:")
    assert f"checked {len(NOISE)} evidence lines" in report.summary
    assert report.templates  # what the lines say is still reported


async def test_empty_evidence_is_insufficient() -> None:
    report = await explain([])
    assert report.status is RcaStatus.INSUFFICIENT_EVIDENCE
    assert report.summary == "Insufficient evidence: there are no evidence lines to analyse."
    assert report.templates == ()


async def test_co_firing_incident_on_same_host_is_surfaced_with_overlapping_evidence() -> None:
    inc = incident(host="db-1", service="orders", title="Slow queries on db-1")
    cpu = incident(
        7,
        host="db-1",
        service="postgres",
        title="High CPU on db-1",
        first_seen=T0 - timedelta(minutes=2),
        last_seen=T0 + timedelta(seconds=30),
    )
    inside = evidence(NOISE[:3], start=T0)  # 10:00:00 .. 10:00:20
    outside = evidence(NOISE[3:6], start=T0 + timedelta(minutes=20))
    report = await explain(inside + outside, related=[cpu], inc=inc)

    assert report.related == ("INC-7",)
    assert report.status is RcaStatus.OK
    (cause,) = report.causes
    assert cause.text.startswith(
        "INC-7 (High CPU on db-1) fired on the same host (db-1) 2 minutes earlier"
    )
    assert set(cause.evidence_ids) == {e.id for e in inside}
    assert cause.confidence < 0.6
    assert report.summary.startswith("Possibly related to INC-7:")


async def test_related_incident_without_overlap_is_listed_but_not_a_cause() -> None:
    old = incident(
        3,
        title="Disk full on web-1",
        first_seen=T0 - timedelta(hours=5),
        last_seen=T0 - timedelta(hours=4),
    )
    report = await explain(evidence(NOISE), related=[old])
    assert report.related == ("INC-3",)
    assert report.status is RcaStatus.INSUFFICIENT_EVIDENCE
    assert "1 related incident with no overlapping evidence" in report.summary


async def test_the_incident_itself_is_not_its_own_related_incident() -> None:
    inc = incident()
    report = await explain(evidence(NOISE), related=[inc], inc=inc)
    assert report.related == ()
    assert report.causes == ()


async def test_pattern_and_co_firing_together() -> None:
    inc = incident(host="web-1")
    deploy = incident(
        9, host="web-2", title="Pod restarts", first_seen=T0, last_seen=T0 + timedelta(minutes=1)
    )
    report = await explain(evidence(WEB_5XX), related=[deploy], inc=inc)
    assert report.summary.startswith("Most likely web 5xx burst:")
    assert "Also seen: co-firing INC-9." in report.summary
    assert "on the same service (checkout) at about the same time" in report.causes[1].text


async def test_same_input_same_report() -> None:
    lines = evidence(WEB_5XX + SPRAY + HIGH_CPU + NOISE)
    related = [incident(5, title="High CPU on web-1", first_seen=T0 - timedelta(minutes=1))]
    first = await explain(lines, related=related)
    second = await explain(list(lines), related=list(related))
    assert first == second


async def test_large_evidence_gives_the_same_answer_off_the_event_loop() -> None:
    lines = evidence((WEB_5XX + NOISE) * 30, step_s=1)
    engine = HeuristicRcaEngine(inline_limit=50)
    threaded = await engine.explain(incident(), lines, RcaContext())
    assert threaded == engine.analyse(incident(), lines, RcaContext())
    assert threaded.summary.startswith("Most likely web 5xx burst:")


async def test_patterns_still_match_strictly_redacted_evidence() -> None:
    redactor = Redactor("strict")
    lines = evidence([redactor.redact(line) for line in WEB_5XX + SPRAY])
    report = await explain(lines)
    assert report.summary.startswith("Most likely web 5xx burst:")
    assert any("password spraying" in c.text for c in report.causes)


async def test_full_filesystem_message_counts_as_disk_filling() -> None:
    lines = evidence(["Nov 22 10:00:00 db-1 monit[77]: filesystem /var is 97.5% full", *NOISE])
    report = await explain(lines)
    assert report.summary.startswith("Most likely disk filling:")
    assert "the disk reported full (1 line)" in report.causes[0].text
