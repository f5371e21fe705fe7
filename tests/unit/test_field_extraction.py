"""Field extraction per sourcetype: real line formats in, CIM/add-on field names out."""

from __future__ import annotations

import pytest

from detectors.fields import DEFAULT, producible_fields

HEAD = "Dec  5 20:10:18 LabSZ sshd[24200]: "


def fields(sourcetype: str, raw: str) -> dict[str, str]:
    return DEFAULT.extract(sourcetype, raw)


def pick(found: dict[str, str], *names: str) -> dict[str, str | None]:
    return {name: found.get(name) for name in names}


# --- sshd and pam_unix (linux_secure) -------------------------------------------------------

AUTH = ("action", "user", "src", "src_port")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Failed password for root from 183.62.140.253 port 36300 ssh2",
            ("failure", "root", "183.62.140.253", "36300"),
        ),
        (
            "Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
            ("failure", "webmaster", "173.234.31.186", "38926"),
        ),
        (
            "Failed none for invalid user admin from 2001:db8::7 port 22 ssh2",
            ("failure", "admin", "2001:db8::7", "22"),
        ),
        (
            "Invalid user test9 from 52.80.34.196 port 36060",
            ("failure", "test9", "52.80.34.196", "36060"),
        ),
        ("Invalid user oracle from 52.80.34.196", ("failure", "oracle", "52.80.34.196", None)),
        (
            "Connection closed by authenticating user root 112.95.230.3 port 40460 [preauth]",
            ("failure", "root", "112.95.230.3", "40460"),
        ),
        (
            "Disconnected from invalid user admin 1.2.3.4 port 51234 [preauth]",
            ("failure", "admin", "1.2.3.4", "51234"),
        ),
        (
            "error: maximum authentication attempts exceeded for root from 5.6.7.8 port 2 ssh2"
            " [preauth]",
            ("failure", "root", "5.6.7.8", "2"),
        ),
        (
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser="
            " rhost=183.62.140.253  user=root",
            ("failure", "root", "183.62.140.253", None),
        ),
        (
            "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser="
            " rhost=61.177.172.13  user=root",
            ("failure", "root", "61.177.172.13", None),
        ),
        (
            "Accepted publickey for fztu from 119.137.62.142 port 49116 ssh2",
            ("success", "fztu", "119.137.62.142", "49116"),
        ),
        (
            "message repeated 2 times: [ Failed password for root from 9.9.9.9 port 1 ssh2]",
            ("failure", "root", "9.9.9.9", "1"),
        ),
        (
            "Received disconnect from 183.62.140.253 port 36300:11: Bye Bye [preauth]",
            (None, None, "183.62.140.253", "36300"),
        ),
        (
            "Connection closed by 183.62.140.253 port 36300 [preauth]",
            (None, None, "183.62.140.253", "36300"),
        ),
    ],
)
def test_sshd_and_pam_lines(message: str, expected: tuple[str | None, ...]) -> None:
    found = fields("linux_secure", HEAD + message)
    assert pick(found, *AUTH) == dict(zip(AUTH, expected, strict=True))
    assert pick(found, "dest", "process", "pid") == {
        "dest": "LabSZ",
        "process": "sshd",
        "pid": "24200",
    }
    assert found.get("app") == ("sshd" if expected[0] else None)


def test_src_ip_only_when_src_is_an_address() -> None:
    by_name = fields(
        "linux_secure",
        HEAD + "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser="
        " rhost=host-7.example.net",
    )
    assert by_name["src"] == "host-7.example.net"
    assert "src_ip" not in by_name
    assert "user" not in by_name  # pam omits user= for unknown users
    by_address = fields("linux_secure", HEAD + "Invalid user a from 10.1.2.3 port 9")
    assert by_address["src_ip"] == "10.1.2.3"


def test_rfc3339_header_and_syslog_sourcetype() -> None:
    raw = "2026-12-05T20:10:18.123456+00:00 web-1 sshd[99]: Invalid user pi from 10.0.0.9 port 5"
    for sourcetype in ("linux_secure", "syslog", "LINUX_SECURE"):
        found = fields(sourcetype, raw)
        assert pick(found, "dest", "user", "src", "action") == {
            "dest": "web-1",
            "user": "pi",
            "src": "10.0.0.9",
            "action": "failure",
        }


def test_unrelated_lines_get_only_the_header() -> None:
    found = fields("linux_secure", HEAD + "Server listening on 0.0.0.0 port 22.")
    assert found == {"dest": "LabSZ", "process": "sshd", "pid": "24200"}
    assert fields("linux_secure", "not a syslog line at all") == {}


def test_sudo() -> None:
    raw = (
        "Dec  5 20:10:18 db-1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ;"
        " COMMAND=/bin/ls"
    )
    assert fields("linux_secure", raw)["user"] == "alice"


# --- hardware and kernel lines --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sourcetype", "raw", "expected"),
    [
        (
            "smartd",
            "Dec  5 20:10:18 stor-1 smartd[1187]: Device: /dev/sda [SAT], 8 Currently unreadable"
            " (pending) sectors",
            {"device": "/dev/sda", "count": "8", "error_type": "pending_sectors"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 smartd[1187]: Device: /dev/sdc [SAT], 3 Offline"
            " uncorrectable sectors",
            {"device": "/dev/sdc", "count": "3", "error_type": "offline_uncorrectable"},
        ),
        (
            "smartd",
            "Dec  5 20:10:18 stor-1 smartd[1187]: Device: /dev/sdb [SAT], SMART Prefailure"
            " Attribute: 5 Reallocated_Sector_Ct changed from 100 to 99",
            {
                "device": "/dev/sdb",
                "attribute": "Reallocated_Sector_Ct",
                "old_value": "100",
                "new_value": "99",
            },
        ),
        (
            "smartd",
            "Dec  5 20:10:18 stor-1 smartd[1187]: Device: /dev/sdb [SAT], FAILED SMART"
            " self-check. BACK UP DATA NOW!",
            {"device": "/dev/sdb", "error_type": "smart_failure"},
        ),
        (
            "smartd",
            "Dec  5 20:10:18 stor-1 smartd[1187]: Device: /dev/sda [SAT], Temperature 61 Celsius"
            " reached limit of 60 Celsius (Min/Max 25/61)",
            {"device": "/dev/sda", "temperature": "61", "error_type": "temperature_limit"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 kernel: [86400.123456] blk_update_request: I/O error, dev"
            " sdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
            {"device": "sdb", "sector": "2048", "error_type": "io_error"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 kernel: I/O error, dev nvme0n1, sector 4096 op 0x1:(WRITE)"
            " flags 0x800 phys_seg 1 prio class 2",
            {"device": "nvme0n1", "sector": "4096", "error_type": "io_error"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 kernel: ata3.00: failed command: READ FPDMA QUEUED",
            {"device": "ata3.00", "command": "READ FPDMA QUEUED", "error_type": "ata_error"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 kernel: EXT4-fs error (device sda1): ext4_find_entry:1455:"
            " inode #2: comm ls: reading directory lblock 0",
            {"device": "sda1", "filesystem": "EXT4", "error_type": "filesystem_error"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 kernel: md/raid1:md0: Disk failure on sdb1, disabling device.",
            {"device": "md0", "component": "sdb1", "error_type": "disk_failure"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 mdadm[900]: Fail event detected on md device /dev/md0,"
            " component device /dev/sdb1",
            {"device": "/dev/md0", "component": "/dev/sdb1", "raid_event": "Fail"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 stor-1 mdadm[900]: DegradedArray event detected on md device /dev/md1",
            {"device": "/dev/md1", "raid_event": "DegradedArray", "error_type": "raid_event"},
        ),
        (
            "syslog",
            "Dec  5 20:10:18 db-1 kernel: EDAC MC0: 1 CE memory read error on"
            " CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x12345 offset:0x0"
            " grain:32 syndrome:0x0)",
            {
                "memory_controller": "MC0",
                "count": "1",
                "error_class": "CE",
                "dimm": "CPU_SrcID#0_Ha#0_Chan#1_DIMM#0",
                "error_type": "memory_error",
            },
        ),
        (
            "syslog",
            "Dec  5 20:10:18 db-1 kernel: CPU3: Package temperature above threshold, cpu clock"
            " throttled (total events = 57)",
            {
                "cpu": "CPU3",
                "component": "Package",
                "count": "57",
                "error_type": "thermal_throttle",
            },
        ),
        (
            "syslog",
            "Dec  5 20:10:18 db-1 kernel: thermal thermal_zone0: critical temperature reached"
            " (105 C), shutting down",
            {"temperature": "105", "error_type": "thermal_critical"},
        ),
    ],
)
def test_hardware_lines(sourcetype: str, raw: str, expected: dict[str, str]) -> None:
    found = fields(sourcetype, raw)
    assert pick(found, *expected) == expected
    assert found["dest"] in ("stor-1", "db-1")


def test_an_ordinary_kernel_line_names_no_error() -> None:
    found = fields("syslog", "Dec  5 20:10:18 db-1 kernel: e1000e: eth0 NIC Link is Up 1000 Mbps")
    assert "error_type" not in found
    assert found["process"] == "kernel"


# --- Windows --------------------------------------------------------------------------------

CLASSIC_4625 = """12/05/2026 08:10:18 PM
LogName=Security
EventCode=4625
EventType=0
ComputerName=dc01.corp.example
SourceName=Microsoft Windows security auditing.
Type=Information
RecordNumber=1234567
Keywords=Audit Failure
TaskCategory=Logon
OpCode=Info
Message=An account failed to log on.

Subject:
\tSecurity ID:\t\tS-1-0-0
\tAccount Name:\t\t-
\tAccount Domain:\t\t-
\tLogon ID:\t\t0x0

Logon Type:\t\t\t3

Account For Which Logon Failed:
\tSecurity ID:\t\tS-1-0-0
\tAccount Name:\t\tadministrator
\tAccount Domain:\t\tCORP

Failure Information:
\tFailure Reason:\t\tUnknown user name or bad password.
\tStatus:\t\t\t0xC000006D
\tSub Status:\t\t0xC000006A

Network Information:
\tWorkstation Name:\tKALI
\tSource Network Address:\t203.0.113.7
\tSource Port:\t\t0
"""

XML_4625 = (
    "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
    "<Provider Name='Microsoft-Windows-Security-Auditing' Guid='{54849625-5478-4994-a5ba-"
    "3e3b0328c30d}'/><EventID>4625</EventID><Version>0</Version><Level>0</Level>"
    "<Task>12544</Task><Opcode>0</Opcode><Keywords>0x8010000000000000</Keywords>"
    "<TimeCreated SystemTime='2026-12-05T20:10:18.123456700Z'/><EventRecordID>1234567"
    "</EventRecordID><Correlation/><Execution ProcessID='636' ThreadID='700'/>"
    "<Channel>Security</Channel><Computer>dc01.corp.example</Computer><Security/></System>"
    "<EventData><Data Name='SubjectUserSid'>S-1-0-0</Data><Data Name='SubjectUserName'>-"
    "</Data><Data Name='TargetUserName'>administrator</Data><Data Name='TargetDomainName'>"
    "CORP</Data><Data Name='Status'>0xc000006d</Data><Data Name='FailureReason'>%%2313</Data>"
    "<Data Name='SubStatus'>0xc000006a</Data><Data Name='LogonType'>3</Data>"
    "<Data Name='WorkstationName'>KALI</Data><Data Name='IpAddress'>203.0.113.7</Data>"
    "<Data Name='IpPort'>0</Data></EventData></Event>"
)


@pytest.mark.parametrize("raw", [CLASSIC_4625, XML_4625], ids=["classic", "xml"])
def test_windows_4625_in_both_renderings(raw: str) -> None:
    found = fields("WinEventLog:Security", raw)
    assert pick(
        found, "EventCode", "Account_Name", "Logon_Type", "Source_Network_Address", "ComputerName"
    ) == {
        "EventCode": "4625",
        "Account_Name": "administrator",  # the target account, not the Subject's "-"
        "Logon_Type": "3",
        "Source_Network_Address": "203.0.113.7",
        "ComputerName": "dc01.corp.example",
    }
    assert pick(found, "src", "src_ip", "user", "dest", "action", "src_nt_host") == {
        "src": "203.0.113.7",
        "src_ip": "203.0.113.7",
        "user": "administrator",
        "dest": "dc01.corp.example",
        "action": "failure",
        "src_nt_host": "KALI",
    }
    assert found["Sub_Status"].lower() == "0xc000006a"
    assert "src_port" not in found  # port 0 means none


def test_windows_xml_keeps_its_own_names_and_any_sourcetype_spelling() -> None:
    found = fields("XmlWinEventLog:Security", XML_4625)
    assert pick(found, "EventID", "TargetUserName", "IpAddress", "Channel", "LogName") == {
        "EventID": "4625",
        "TargetUserName": "administrator",
        "IpAddress": "203.0.113.7",
        "Channel": "Security",
        "LogName": "Security",
    }


def test_windows_logon_from_localhost_has_no_src() -> None:
    raw = CLASSIC_4625.replace("203.0.113.7", "-").replace("4625", "4624")
    found = fields("WinEventLog:Security", raw)
    assert "src" not in found
    assert found["action"] == "success"


def test_windows_one_line_key_value_rendering() -> None:
    raw = (
        "2026-12-05T20:10:18.000Z host=win-dc-1 EventCode=4625 LogName=Security LogonType=3"
        ' TargetUserName=svc IpAddress=10.9.8.7 Message="An account failed to log on."'
    )
    found = fields("WinEventLog:Security", raw)
    assert pick(found, "src", "user", "Logon_Type", "action") == {
        "src": "10.9.8.7",
        "user": "svc",
        "Logon_Type": "3",
        "action": "failure",
    }


# --- web ------------------------------------------------------------------------------------


def test_access_combined() -> None:
    raw = (
        '203.0.113.9 - alice [05/Dec/2026:20:10:18 +0000] "GET /api/orders?id=7&x=1 HTTP/1.1"'
        ' 502 173 "https://shop.example/cart" "Mozilla/5.0 (X11; Linux x86_64)"'
    )
    for sourcetype in ("access_combined", "nginx:access", "apache:access"):
        found = fields(sourcetype, raw)
        assert pick(
            found, "clientip", "method", "uri", "uri_path", "uri_query", "status", "bytes"
        ) == {
            "clientip": "203.0.113.9",
            "method": "GET",
            "uri": "/api/orders?id=7&x=1",
            "uri_path": "/api/orders",
            "uri_query": "id=7&x=1",
            "status": "502",
            "bytes": "173",
        }
        assert found["useragent"] == found["http_user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
        assert found["referer"] == "https://shop.example/cart"
        assert found["src"] == "203.0.113.9"
        assert found["user"] == "alice"


def test_access_line_with_dashes_and_no_agent() -> None:
    found = fields(
        "access_combined", '10.0.0.1 - - [05/Dec/2026:20:10:18 +0000] "HEAD / HTTP/1.0" 200 -'
    )
    assert pick(found, "clientip", "status", "bytes", "user", "uri_query") == {
        "clientip": "10.0.0.1",
        "status": "200",
        "bytes": None,
        "user": None,
        "uri_query": None,
    }


def test_apache_and_nginx_error_logs() -> None:
    apache = fields(
        "apache:error",
        "[Sat Dec 05 20:10:18.123456 2026] [proxy:error] [pid 1234:tid 140] (111)Connection"
        " refused: [client 10.0.0.1:5678] AH00957: HTTP: attempt to connect to 127.0.0.1:8080"
        " (*) failed",
    )
    assert pick(apache, "module", "log_level", "pid", "client", "src", "error_code") == {
        "module": "proxy",
        "log_level": "error",
        "pid": "1234",
        "client": "10.0.0.1",
        "src": "10.0.0.1",
        "error_code": "AH00957",
    }
    old = fields(
        "apache:error",
        "[Sat Dec 05 20:10:18 2026] [error] [client 10.0.0.2] File does not exist: /var/www/x",
    )
    assert pick(old, "log_level", "client", "message") == {
        "log_level": "error",
        "client": "10.0.0.2",
        "message": "File does not exist: /var/www/x",
    }
    nginx = fields(
        "nginx:error",
        "2026/12/05 20:10:18 [error] 1234#1234: *5 connect() failed (111: Connection refused)"
        ' while connecting to upstream, client: 10.0.0.3, server: shop.example, request: "GET /'
        ' HTTP/1.1", upstream: "http://127.0.0.1:8080/", host: "shop.example"',
    )
    assert pick(nginx, "log_level", "client", "server", "upstream") == {
        "log_level": "error",
        "client": "10.0.0.3",
        "server": "shop.example",
        "upstream": "http://127.0.0.1:8080/",
    }


# --- JSON -----------------------------------------------------------------------------------

CLOUDTRAIL = (
    '{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:'
    'user/ci","userName":"ci"},"eventTime":"2026-12-05T20:10:18Z","eventSource":'
    '"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","sourceIPAddress":'
    '"198.51.100.4","errorCode":"AccessDenied","resources":[{"ARN":"arn:aws:s3:::a"},'
    '{"ARN":"arn:aws:s3:::b"}],"readOnly":true,"recipientAccountId":"123456789012"}'
)


def test_cloudtrail_nested_keys_arrays_and_cim() -> None:
    found = fields("aws:cloudtrail", CLOUDTRAIL)
    assert pick(
        found, "eventSource", "errorCode", "userIdentity.userName", "resources{}.ARN", "readOnly"
    ) == {
        "eventSource": "s3.amazonaws.com",
        "errorCode": "AccessDenied",
        "userIdentity.userName": "ci",
        "resources{}.ARN": "arn:aws:s3:::a,arn:aws:s3:::b",
        "readOnly": "true",
    }
    assert pick(found, "src", "user", "region", "aws_account_id", "action") == {
        "src": "198.51.100.4",
        "user": "ci",
        "region": "eu-west-1",
        "aws_account_id": "123456789012",
        "action": "failure",
    }


def test_any_json_event_gets_its_keys_whatever_its_sourcetype() -> None:
    raw = '{"level":"error","msg":"payment failed","ctx":{"order":{"id":42}},"tags":["a","b"]}'
    for sourcetype in ("kube:container:checkout", "app:log", ""):
        found = fields(sourcetype, raw)
        assert found == {
            "level": "error",
            "msg": "payment failed",
            "ctx.order.id": "42",
            "tags{}": "a,b",
        }
    assert fields("app:log", "{not json") == {}


# --- what a sourcetype can produce ----------------------------------------------------------


def test_producible_fields() -> None:
    assert {"src", "user", "action", "app", "dest"} <= producible_fields("linux_secure")
    assert "device" in producible_fields("smartd")
    assert {"EventCode", "Account_Name", "src", "Logon_Type"} <= producible_fields(
        "WinEventLog:Security"
    )
    assert "src" in producible_fields("WinEventLog:*")  # a query's wildcard
    assert {"clientip", "status", "uri_path", "bytes", "useragent"} <= producible_fields(
        "nginx:access"
    )
    assert "*" in producible_fields("aws:cloudtrail")
    assert "*" in producible_fields("kube:container:api")
    assert producible_fields("my:own") == frozenset()
    assert "*" not in producible_fields("linux_secure")


def test_the_older_pam_layout() -> None:
    raw = (
        "Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= uid=0"
        " euid=0 tty=NODEVssh ruser= rhost=220-135-151-1.hinet-ip.hinet.net  user=root"
    )
    found = fields("linux_secure", raw)
    assert pick(found, "action", "src", "user", "app", "process", "dest") == {
        "action": "failure",
        "src": "220-135-151-1.hinet-ip.hinet.net",
        "user": "root",
        "app": "sshd",
        "process": "sshd(pam_unix)",
        "dest": "combo",
    }
    unknown = "Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown"
    assert "action" not in fields("linux_secure", unknown)
    session = "Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)"
    assert pick(fields("linux_secure", session), "user", "session_action") == {
        "user": "cyrus",
        "session_action": "opened",
    }


def test_json_behind_a_container_runtime_prefix() -> None:
    raw = '2026-12-05T20:10:18.123456789Z stderr F {"level":"error","msg":"db down"}'
    found = fields("kube:container:checkout", raw)
    assert found == {"level": "error", "msg": "db down", "stream": "stderr"}
