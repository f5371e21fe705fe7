"""Syslog lines: the header, sshd and pam_unix authentication (``linux_secure``), and the
kernel's, smartd's and mdadm's own words for disk, RAID, memory and thermal trouble.

Names follow the Splunk Add-on for Unix and Linux and the CIM Authentication model: ``src``,
``src_ip``, ``src_port``, ``user``, ``action`` (``success``/``failure``), ``app``, ``dest``,
``process``, ``pid``.
"""

from __future__ import annotations

import re

from detectors.fields.model import (
    Fields,
    Pattern,
    SourcetypeExtraction,
    add_src_ip,
    apply_first,
    pattern,
)

_HEADER_RE = re.compile(
    r"^(?:<\d+>\d?\s*)?"
    r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?P<dest>\S+) (?P<process>[A-Za-z0-9_./@()-]+?)(?:\[(?P<pid>\d+)\])?: ",
    re.ASCII,
)

_HOST = r"(?P<src>[0-9A-Za-z.:_-]+)"
_PORT = r" port (?P<src_port>\d+)"

_PAM_TAIL = r"(?:.*?\brhost=(?P<src>[^\s=]+))?(?:.*?\buser=(?P<user>\S+))?"

# (the first word of the message, a pattern for lines starting with it), in order of preference
_AUTH_TABLE: tuple[tuple[str, Pattern], ...] = (
    (
        "Failed",
        pattern(
            r"Failed (?P<authentication_method>\S+) for (?:invalid user )?(?P<user>\S*?) from "
            + _HOST
            + _PORT,
            "Failed ",
            action="failure",
        ),
    ),
    (
        "Accepted",
        pattern(
            r"Accepted (?P<authentication_method>\S+) for (?P<user>\S+) from " + _HOST + _PORT,
            "Accepted ",
            action="success",
        ),
    ),
    (
        "Invalid",
        pattern(
            r"Invalid user (?P<user>\S*) from " + _HOST + r"(?:" + _PORT + ")?",
            "Invalid user ",
            action="failure",
        ),
    ),
    (
        "Connection",
        pattern(
            r"Connection closed by (?:authenticating|invalid) user (?P<user>\S*) " + _HOST + _PORT,
            "Connection closed by ",
            action="failure",
        ),
    ),
    (
        "Disconnected",
        pattern(
            r"Disconnected from (?:authenticating|invalid) user (?P<user>\S*) " + _HOST + _PORT,
            "Disconnected from ",
            action="failure",
        ),
    ),
    (
        "error:",
        pattern(
            r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) from "
            + _HOST
            + _PORT,
            "maximum authentication attempts",
            action="failure",
        ),
    ),
    (
        "pam_unix",
        pattern(
            r"pam_unix\((?P<pam_service>[^:)]+):auth\): authentication failure;" + _PAM_TAIL,
            "authentication failure",
            action="failure",
        ),
    ),
    (
        # the older layout: "sshd(pam_unix)[pid]: authentication failure; ... rhost=..."
        "authentication",
        pattern(
            r"\]: authentication failure;" + _PAM_TAIL, "authentication failure", action="failure"
        ),
    ),
    (
        "PAM",
        pattern(
            r"PAM (?P<count>\d+) more authentication failures?;" + _PAM_TAIL,
            "more authentication failure",
            action="failure",
        ),
    ),
    (
        "pam_unix",
        pattern(
            r"pam_unix\((?P<pam_service>[^:)]+):session\): session (?P<session_action>opened"
            r"|closed) for user (?P<user>[^\s(]+)",
            "pam_unix",
        ),
    ),
    (
        "session",
        pattern(
            r"\]: session (?P<session_action>opened|closed) for user (?P<user>[^\s(]+)",
            "session ",
        ),
    ),
    ("Connection", pattern(r"Connection closed by " + _HOST + _PORT, "Connection closed by ")),
    (
        "Disconnected",
        pattern(
            r"Disconnected from (?:user (?P<user>\S+) )?" + _HOST + _PORT, "Disconnected from "
        ),
    ),
    ("Received", pattern(r"Received disconnect from " + _HOST + _PORT, "Received disconnect")),
    (
        "Did",
        pattern(r"Did not receive identification string from " + _HOST, "identification string"),
    ),
)
AUTH: tuple[Pattern, ...] = tuple(p for _, p in _AUTH_TABLE)
SUDO = pattern(r"sudo:\s+(?P<user>[^\s:]+) : ", "sudo:")

AUTH_FIELDS = frozenset({"dest", "process", "pid", "app", "src_ip"}).union(
    *(p.fields for p in (*AUTH, SUDO))
)


def header(raw: str, found: Fields) -> int:
    """``dest`` (the host in the line), ``process`` and ``pid`` of a syslog header; returns
    where the message starts (-1 without a header)."""
    m = _HEADER_RE.match(raw)
    if m is None:
        return -1
    for name, value in m.groupdict().items():
        if value and name not in found:
            found[name] = value
    return m.end()


def _by_first_word() -> dict[str, tuple[Pattern, ...]]:
    """The patterns worth trying, by the first word of the message (a fast dispatch)."""
    table: dict[str, list[Pattern]] = {}
    for word, p in _AUTH_TABLE:
        table.setdefault(word, []).append(p)
    return {word: tuple(patterns) for word, patterns in table.items()}


def extract_auth(raw: str) -> Fields:
    found: Fields = {}
    start = header(raw, found)
    if start < 0:
        apply_first(AUTH, raw, found)
    elif found.get("process") == "sudo":
        SUDO.apply(raw, found)
    else:
        end = raw.find(" ", start)
        word = raw[start:end].split("(", 1)[0]
        if word == "message":  # "message repeated 3 times: [ Failed password ... ]"
            apply_first(AUTH, raw, found)
        else:
            for p in _AUTH_BY_WORD.get(word, ()):
                if p.apply(raw, found):
                    break
    process = found.get("process")
    if process and "action" in found:
        found.setdefault("app", process.split("(", 1)[0])  # "sshd(pam_unix)": sshd
    add_src_ip(found)
    return found


_DEV = r"(?P<device>/dev/[^\s,\]]+)"

HARDWARE: tuple[Pattern, ...] = (
    # smartd
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, (?P<count>\d+) Currently "
        r"unreadable \(pending\) sectors",
        "Currently unreadable",
        error_type="pending_sectors",
        attribute="Current_Pending_Sector",
    ),
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, (?P<count>\d+) Offline "
        r"uncorrectable sectors",
        "Offline uncorrectable",
        error_type="offline_uncorrectable",
        attribute="Offline_Uncorrectable",
    ),
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, SMART (?P<attribute_kind>"
        r"Prefailure|Usage) Attribute: (?P<attribute_id>\d+) (?P<attribute>\S+) changed from "
        r"(?P<old_value>\d+) to (?P<new_value>\d+)",
        " Attribute: ",
        error_type="attribute_change",
    ),
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, (?:FAILED SMART self-check"
        r"|SMART Failure: (?P<failure>[^.]+))",
        "SMART",
        error_type="smart_failure",
    ),
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, Temperature (?P<temperature>"
        r"\d+) Celsius reached (?:critical )?limit of (?P<limit>\d+) Celsius",
        "Temperature",
        error_type="temperature_limit",
    ),
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, Temperature changed [+-]?\d+ "
        r"Celsius to (?P<temperature>\d+) Celsius",
        "Temperature changed",
        error_type="temperature_change",
    ),
    pattern(
        r"Device: " + _DEV + r"(?: \[(?P<device_type>[^\]]+)\])?, (?P<error_log>ATA error|"
        r"Self-Test Log error) count increased from (?P<old_value>\d+) to (?P<new_value>\d+)",
        "count increased",
        error_type="error_count",
    ),
    # kernel block layer, libata, file systems
    pattern(
        r"(?:blk_update_request|I/O error)[:,]? (?:I/O error, )?dev (?P<device>[\w-]+), "
        r"sector (?P<sector>\d+)",
        "error, dev ",
        error_type="io_error",
    ),
    pattern(
        r"Buffer I/O error on dev(?:ice)? (?P<device>[\w-]+)", "Buffer I/O", error_type="io_error"
    ),
    pattern(
        r"(?P<device>ata\d+(?:\.\d+)?): (?:failed command: (?P<command>[^\n]+)|"
        r"exception Emask|error: \{ (?P<ata_error>[^}]+?) \})",
        "ata",
        error_type="ata_error",
    ),
    pattern(
        r"(?P<filesystem>EXT4|EXT3|XFS|BTRFS)(?:-fs)? (?:error|\(|warning)[^(]*\(device "
        r"(?P<device>[\w-]+)\)",
        "(device ",
        error_type="filesystem_error",
    ),
    # software RAID (md, mdadm) and hardware RAID controllers
    pattern(
        r"md/raid\d+:(?P<device>md\d+): Disk failure on (?P<component>[\w-]+)",
        "Disk failure on",
        error_type="disk_failure",
    ),
    pattern(
        r"(?P<raid_event>Fail|DegradedArray|FailSpare|SpareActive|RebuildFinished|"
        r"RebuildStarted|DeviceDisappeared) event detected on md device (?P<device>/dev/\S+?)"
        r"(?:,\s*component device (?P<component>/dev/\S+))?(?:$|\s)",
        "event detected on md device",
        error_type="raid_event",
    ),
    pattern(
        r"(?P<controller>megaraid_sas|megasas|mpt\dsas|aacraid|hpsa|smartpqi)[^:]*:.*?"
        r"(?P<raid_message>(?:VD|PD|Virtual drive|Physical drive|Logical drive)\b[^\n]*?"
        r"(?:DEGRADED|FAILED|OFFLINE|Failed|Degraded|failed|degraded)[^\n]*)",
        None,
        error_type="raid_controller",
    ),
    # memory (EDAC, machine checks)
    pattern(
        r"EDAC (?:\w+ )?(?P<memory_controller>MC\d+): (?P<count>\d+) (?P<error_class>CE|UE) "
        r"(?P<memory_error>[^\n]*?) on (?P<dimm>[^\s(]+)",
        "EDAC",
        error_type="memory_error",
    ),
    pattern(r"mce: \[Hardware Error\]: (?P<mce_detail>[^\n]+)", "Hardware Error", error_type="mce"),
    # thermal
    pattern(
        r"(?P<cpu>CPU\d+): (?P<component>Core|Package) temperature above threshold, cpu clock "
        r"throttled \(total events = (?P<count>\d+)\)",
        "temperature above threshold",
        error_type="thermal_throttle",
    ),
    pattern(
        r"(?P<component>thermal_zone\d+|[\w-]+): critical temperature reached "
        r"\(?(?P<temperature>\d+) ?C\)?",
        "critical temperature",
        error_type="thermal_critical",
    ),
)

HARDWARE_FIELDS = frozenset({"dest", "process", "pid"}).union(*(p.fields for p in HARDWARE))


_AUTH_BY_WORD = _by_first_word()


# a line holds one of these when any HARDWARE pattern can match it: one scan rules most out
_HARDWARE_HINT_RE = re.compile(
    r"Device: |error|\(device |md/raid|md device|EDAC|Hardware Error|temperature|ata\d|"
    r"megaraid_sas|megasas|mpt\dsas|aacraid|hpsa|smartpqi"
)


def extract_hardware(raw: str) -> Fields:
    found: Fields = {}
    if _HARDWARE_HINT_RE.search(raw) is None:
        return found
    if apply_first(HARDWARE, raw, found):
        header(raw, found)
    return found


def extract_syslog(raw: str) -> Fields:
    """``syslog`` lines may be either: authentication or hardware, whichever matches."""
    found = extract_auth(raw)
    if "action" not in found and "src" not in found:
        for name, value in extract_hardware(raw).items():
            found.setdefault(name, value)
    return found


LINUX_SECURE = SourcetypeExtraction(
    "linux_secure",
    ("linux_secure", "linux:auth", "auth", "secure"),
    extract_auth,
    AUTH_FIELDS,
)
SYSLOG = SourcetypeExtraction(
    "syslog",
    ("syslog", "linux_messages_syslog", "linux:syslog", "kern", "kernel", "linux:kernel"),
    extract_syslog,
    AUTH_FIELDS | HARDWARE_FIELDS,
)
SMARTD = SourcetypeExtraction("smartd", ("smartd",), extract_hardware, HARDWARE_FIELDS)
