"""More staged incidents: cloud API errors, SSH password guessing, an application error storm,
storage trouble (RAID, latency, a power supply, Windows disk errors), a failing DIMM, an
overheating CPU and an endpoint snapshot.

Like the first set (:mod:`integrations.local.scenarios`), each writes its events over the minute
before ``now``, on one host (or one service); :data:`SPECS` lists them as the arguments of a
``Scenario`` and that module registers them. Sources the fleet module has no format for
(CloudTrail records, sshd's auth log) are spelled here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from integrations.local import fleet
from integrations.local.events import Event
from integrations.local.snapshots import example_snapshot, parse_snapshot, snapshot_events

SPAN_S = 60.0
AWS_ACCOUNT = "123456789012"
AWS_HOST = "aws-prod"
GUESSER = "203.0.113.45"
SSH_HOST = "web-2"

Build = Callable[[datetime, random.Random], list[Event]]


def _spaced(now: datetime, count: int) -> list[datetime]:
    step = SPAN_S / count
    return [now - timedelta(seconds=SPAN_S - i * step) for i in range(count)]


def _scattered(now: datetime, count: int, rng: random.Random) -> list[datetime]:
    return sorted(now - timedelta(seconds=rng.uniform(0.01, SPAN_S)) for _ in range(count))


def cloudtrail(
    t: datetime,
    *,
    event_source: str,
    event_name: str,
    error_code: str,
    error_message: str,
    arn: str,
    source_ip: str,
    region: str = "eu-west-1",
) -> Event:
    """A CloudTrail record as JSON, with the fields Splunk's AWS add-on extracts from it."""
    t = fleet.to_millis(t)
    record = {
        "eventVersion": "1.08",
        "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": AWS_ACCOUNT},
        "errorCode": error_code,
        "errorMessage": error_message,
        "recipientAccountId": AWS_ACCOUNT,
    }
    fields = {
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userIdentity.arn": arn,
        "errorCode": error_code,
        "recipientAccountId": AWS_ACCOUNT,
    }
    raw = json.dumps(record, separators=(",", ":"))
    return Event(
        t,
        raw,
        index="aws",
        sourcetype="aws:cloudtrail",
        source="aws_cloudtrail",
        host=AWS_HOST,
        fields=fields,
    )


def sshd_failure(t: datetime, host: str, user: str, address: str, known: bool) -> Event:
    """An sshd ``Failed password`` line of the auth log; the search extracts ``src``, ``user``,
    ``action`` and ``app`` from it as the Unix add-on does (docs/field-extraction.md)."""
    t = fleet.to_millis(t)
    who = user if known else f"invalid user {user}"
    port = 40_000 + int(t.timestamp() * 1000) % 20_000
    raw = (
        f"{fleet.stamp(t)} {host} sshd[{3000 + port % 900}]: Failed password for {who} "
        f"from {address} port {port} ssh2"
    )
    return Event(
        t, raw, index="os", sourcetype="linux_secure", source="/var/log/auth.log", host=host
    )


def _aws_access_denied(now: datetime, rng: random.Random) -> list[Event]:
    arn = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/ci-deployer/build-4411"
    events = [
        cloudtrail(
            t,
            event_source="s3.amazonaws.com",
            event_name=rng.choice(("GetObject", "ListBucket", "PutObject")),
            error_code="AccessDenied",
            error_message="Access Denied",
            arn=arn,
            source_ip="192.0.2.14",
        )
        for t in _scattered(now, rng.randint(24, 36), rng)
    ]
    events += [
        cloudtrail(
            t,
            event_source="ec2.amazonaws.com",
            event_name="DescribeInstances",
            error_code="Client.RequestLimitExceeded",
            error_message="Request limit exceeded.",
            arn=arn,
            source_ip="192.0.2.14",
        )
        for t in _scattered(now, 3, rng)
    ]
    return events


def _ssh_password_guessing(now: datetime, rng: random.Random) -> list[Event]:
    users = (("root", True), ("admin", False), ("ubuntu", False), ("deploy", True), ("git", False))
    events = []
    for t in _scattered(now, rng.randint(30, 45), rng):
        user, known = rng.choice(users)
        events.append(sshd_failure(t, SSH_HOST, user, GUESSER, known))
    return events


def _app_error_storm(now: datetime, rng: random.Random) -> list[Event]:
    messages = (
        "price lookup failed: pricing returned HTTP 500",
        "java.lang.NullPointerException at PriceService.lookup(PriceService.java:88)",
        "request failed: upstream pricing timed out after 2000 ms",
    )
    return [
        fleet.app_log(t, "app-2", "catalog", "ERROR", rng.choice(messages), path="/api/products")
        for t in _scattered(now, rng.randint(25, 35), rng)
    ]


def _raid_degraded(now: datetime, rng: random.Random) -> list[Event]:
    host = fleet.STORAGE_HOST
    at = _spaced(now, 6)
    sector = rng.randint(10**8, 10**9)
    return [
        fleet.syslog(
            at[0],
            host,
            "kernel",
            f"blk_update_request: I/O error, dev sdd, sector {sector} op 0x1:(WRITE)",
        ),
        fleet.syslog(
            at[1],
            host,
            "kernel",
            "md/raid:md0: Disk failure on sdd1, disabling device.",
            array="md0",
        ),
        fleet.syslog(
            at[2], host, "kernel", "md/raid:md0: Operation continuing on 3 devices.", array="md0"
        ),
        fleet.syslog(
            at[3],
            host,
            "mdadm[1322]",
            "DegradedArray event detected on md device /dev/md0",
            array="md0",
        ),
        fleet.syslog(at[4], host, "mdadm[1322]", "Fail event detected on md device /dev/md0"),
    ]


def _storage_latency(now: datetime, rng: random.Random) -> list[Event]:
    host = fleet.STORAGE_HOST
    events = []
    for i, t in enumerate(_spaced(now, 12)):
        for device in fleet.STORAGE_DISKS:
            slow = device == "/dev/sdb"
            value = 60 + i * 9 + rng.uniform(0, 15) if slow else rng.uniform(1.5, 6)
            events.append(fleet.metric(t, host, "disk_latency_ms", value, device=device))
    return events


def _psu_failure(now: datetime, rng: random.Random) -> list[Event]:
    host = fleet.STORAGE_HOST
    at = _spaced(now, 4)
    return [
        fleet.bmc_sel(at[1], host, "Power Supply", "PS1", "Power Supply AC lost", "Asserted", ""),
        fleet.bmc_sel(at[2], host, "Power Supply", "PS1", "Failure detected", "Asserted", ""),
        fleet.bmc_sel(at[3], host, "Power Unit", "PWR_UNIT", "Redundancy Lost", "Asserted", ""),
    ]


def _windows_disk_errors(now: datetime, rng: random.Random) -> list[Event]:
    host = "win-app-1"
    disk = r"\Device\Harddisk1\DR1"
    messages = {
        153: (
            "disk",
            f"The IO operation at logical block address 0x{rng.randint(2**20, 2**28):x} for "
            "Disk 1 was retried.",
        ),
        7: ("disk", f"The device, {disk}, has a bad block."),
        51: ("disk", f"An error was detected on device {disk} during a paging operation."),
        55: (
            "Ntfs",
            "A corruption was discovered in the file system structure on volume D:.",
        ),
    }
    codes = [153, 153, 153, 7, 153, 51, 7, 55]
    return [
        fleet.winevent(t, host, "System", code, messages[code][1], SourceName=messages[code][0])
        for t, code in zip(_spaced(now, len(codes)), codes, strict=True)
    ]


def _memory_errors(now: datetime, rng: random.Random) -> list[Event]:
    """Corrected errors on one DIMM of db-1, then an uncorrected one with its machine check."""
    dimm = "CPU_SrcID#0_Ha#0_Chan#1_DIMM#0"
    detail = "(channel:1 slot:0 page:0x{:x} offset:0x0 grain:32 -  area:DRAM err_code:0001:0091)"
    at = _spaced(now, 5)
    events = [
        fleet.syslog(
            t,
            "db-1",
            "kernel",
            f"EDAC MC0: 1 CE memory read error on {dimm} "
            + detail.format(rng.randint(0x10000, 0xFFFFF)),
        )
        for t in at[:3]
    ]
    events.append(
        fleet.syslog(at[3], "db-1", "kernel", "mce: [Hardware Error]: Machine check events logged")
    )
    events.append(
        fleet.syslog(
            at[4],
            "db-1",
            "kernel",
            f"EDAC MC0: 1 UE memory read error on {dimm} " + detail.format(0x7E2A1),
        )
    )
    return events


def _cpu_throttling(now: datetime, rng: random.Random) -> list[Event]:
    """app-1's CPUs run hot and the kernel throttles them again and again."""
    events = []
    total = 0
    for t in _spaced(now, 8):
        total += rng.randint(1, 3)
        cpu = rng.choice((0, 2, 4, 6))
        events.append(
            fleet.syslog(
                t,
                "app-1",
                "kernel",
                f"CPU{cpu}: Core temperature above threshold, cpu clock throttled "
                f"(total events = {total})",
            )
        )
    return events


def _endpoint_trouble(now: datetime, rng: random.Random) -> list[Event]:
    document = example_snapshot(
        "win-app-1",
        now - timedelta(seconds=rng.uniform(1, 20)),
        last_patch_days=64,
        pending_reboot=True,
        disks=[{"mount": "C:", "used_pct": 97.6}, {"mount": "D:", "used_pct": 41.0}],
        services=[
            {"name": "Spooler", "running": True},
            {"name": "W32Time", "running": False},
            {"name": "WinRM", "running": True},
        ],
    )
    return snapshot_events(parse_snapshot(document))


#: (name, description, host, service, build), in the order they are staged.
SPECS: tuple[tuple[str, str, str, str, Build], ...] = (
    (
        "aws-access-denied",
        "a CI role is denied on S3 again and again (CloudTrail AccessDenied)",
        AWS_HOST,
        "",
        _aws_access_denied,
    ),
    (
        "ssh-password-guessing",
        f"{GUESSER} guesses SSH passwords on {SSH_HOST}",
        SSH_HOST,
        "",
        _ssh_password_guessing,
    ),
    (
        "app-error-storm",
        "catalog logs ERROR after ERROR: its pricing dependency fails",
        "",
        "catalog",
        _app_error_storm,
    ),
    ("raid-degraded", "md0 on stor-1 loses a disk and runs degraded", "stor-1", "", _raid_degraded),
    (
        "storage-latency",
        "/dev/sdb on stor-1 answers slower and slower",
        "stor-1",
        "",
        _storage_latency,
    ),
    ("psu-failure", "stor-1 loses a power supply (BMC event log)", "stor-1", "", _psu_failure),
    (
        "windows-disk-errors",
        "win-app-1 logs disk and NTFS errors (events 153, 7, 51, 55)",
        "win-app-1",
        "",
        _windows_disk_errors,
    ),
    (
        "memory-errors",
        "a DIMM of db-1 fails: corrected memory errors, then an uncorrected one (EDAC)",
        "db-1",
        "",
        _memory_errors,
    ),
    (
        "cpu-throttling",
        "app-1's CPUs overheat and the kernel throttles them",
        "app-1",
        "",
        _cpu_throttling,
    ),
    (
        "endpoint-trouble",
        "win-app-1's snapshot: C: nearly full, W32Time stopped, 64 days without patches",
        "win-app-1",
        "",
        _endpoint_trouble,
    ),
)
