"""Windows event log events (``WinEventLog:*``, ``XmlWinEventLog:*``), in both renderings.

Classic rendering: ``Key=Value`` header lines (``EventCode``, ``ComputerName``, ``LogName``…)
and a ``Message=`` whose ``Key:  value`` lines become ``Key_With_Underscores`` fields
(``Account Name`` -> ``Account_Name``), as the Splunk Add-on for Microsoft Windows names them.
XML rendering: ``EventID`` (also ``EventCode``), ``Computer`` (also ``ComputerName``),
``Channel`` (also ``LogName``) and every ``<Data Name='X'>`` as ``X``, plus the classic names
of the logon fields (``TargetUserName`` -> ``Account_Name``, ``IpAddress`` ->
``Source_Network_Address``, ``LogonType`` -> ``Logon_Type``…).

Both get the CIM names: ``src``, ``src_ip``, ``src_port``, ``src_nt_host``, ``user``, ``dest``,
``action`` (logon events) and ``signature_id``. A classic message names several accounts
(``Subject`` and the target); ``Account_Name`` and ``user`` are the target, the last one that
is not ``-``.
"""

from __future__ import annotations

import html
import re

from detectors.fields.model import Fields, SourcetypeExtraction, add_src_ip

_HEADER_LINE_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.*?)\r?$", re.MULTILINE)
_MESSAGE_LINE_RE = re.compile(
    r"^[ \t]*([A-Za-z][A-Za-z0-9 ()/'-]*?):[ \t]+(\S[^\r\n]*?)[ \t]*\r?$", re.MULTILINE
)
_INLINE_KV_RE = re.compile(r'(?<![^\s,;\[(])([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|([^\s,;"]+))')
_XML_SYSTEM = {
    "EventID": re.compile(r"<EventID(?:\s[^>]*)?>(\d+)</EventID>"),
    "Computer": re.compile(r"<Computer>([^<]*)</Computer>"),
    "Channel": re.compile(r"<Channel>([^<]*)</Channel>"),
    "Level": re.compile(r"<Level>(\d+)</Level>"),
    "EventRecordID": re.compile(r"<EventRecordID>(\d+)</EventRecordID>"),
    "SourceName": re.compile(r"<Provider Name=['\"]([^'\"]+)['\"]"),
}
_XML_DATA_RE = re.compile(r"<Data Name=['\"]([^'\"]+)['\"]\s*(?:/>|>([^<]*)</Data>)")

XML_ALIASES = {
    "EventID": "EventCode",
    "Computer": "ComputerName",
    "Channel": "LogName",
    "EventRecordID": "RecordNumber",
    "TargetUserName": "Account_Name",
    "TargetDomainName": "Account_Domain",
    "TargetUserSid": "Security_ID",
    "IpAddress": "Source_Network_Address",
    "IpPort": "Source_Port",
    "LogonType": "Logon_Type",
    "WorkstationName": "Workstation_Name",
    "Status": "Status",
    "SubStatus": "Sub_Status",
    "FailureReason": "Failure_Reason",
    "ProcessName": "Process_Name",
    "LogonProcessName": "Logon_Process",
    "AuthenticationPackageName": "Authentication_Package",
}
_CLASSIC_HEADER = (
    "LogName",
    "EventCode",
    "EventType",
    "ComputerName",
    "SourceName",
    "Type",
    "RecordNumber",
    "Keywords",
    "TaskCategory",
    "OpCode",
    "Message",
)
_MESSAGE_KEYS = (
    "Security_ID",
    "Account_Name",
    "Account_Domain",
    "Logon_ID",
    "Logon_Type",
    "Failure_Reason",
    "Status",
    "Sub_Status",
    "Caller_Process_ID",
    "Caller_Process_Name",
    "Workstation_Name",
    "Source_Network_Address",
    "Source_Port",
    "Logon_Process",
    "Authentication_Package",
    "Process_Name",
    "Service_Name",
    "Client_Address",
)
_SUCCESS = {"4624", "4648", "4768", "528", "540"}
_FAILURE = {"4625", "4771", "4776", "4740", "529", "530", "531", "532", "533", "534", "539"}
CIM = ("src", "src_ip", "src_port", "src_nt_host", "user", "dest", "action", "signature_id")
_EMPTY = {"", "-", "::1", "127.0.0.1", "null", "NULL"}


def _xml(raw: str, found: Fields) -> None:
    for name, rx in _XML_SYSTEM.items():
        m = rx.search(raw)
        if m:
            found[name] = html.unescape(m.group(1))
    for name, value in _XML_DATA_RE.findall(raw):
        if value:
            found.setdefault(name, html.unescape(value))
    for xml_name, classic in XML_ALIASES.items():
        value = found.get(xml_name)
        if value is not None:
            found.setdefault(classic, value)


def _classic(raw: str, found: Fields) -> None:
    message_at = raw.find("\nMessage=")
    head = raw if message_at < 0 else raw[: message_at + 1]
    for key, value in _HEADER_LINE_RE.findall(head):
        found.setdefault(key, value)
    if message_at >= 0:
        message = raw[message_at + len("\nMessage=") :]
        found["Message"] = message.strip()
        for key, value in _MESSAGE_LINE_RE.findall(message):
            name = re.sub(r"[^A-Za-z0-9]+", "_", key.strip()).strip("_")
            if name == "Account_Name" and value != "-":
                found[name] = value  # the target account: the last one named
            else:
                found.setdefault(name, value)
    if "EventCode" not in found:  # one-line renderings: key=value pairs
        for key, quoted, bare in _INLINE_KV_RE.findall(raw):
            found.setdefault(key, bare or quoted)
        for xml_name, classic in XML_ALIASES.items():
            value = found.get(xml_name)
            if value is not None:
                found.setdefault(classic, value)
        if "EventID" in found:
            found.setdefault("EventCode", found["EventID"])


def _cim(found: Fields) -> None:
    def pick(*names: str) -> str | None:
        for name in names:
            value = found.get(name)
            if value is not None and value not in _EMPTY:
                return value
        return None

    src = pick("Source_Network_Address", "Client_Address")
    if src:
        found.setdefault("src", src.removeprefix("::ffff:"))
    port = pick("Source_Port")
    if port and port != "0":
        found.setdefault("src_port", port)
    host = pick("Workstation_Name")
    if host:
        found.setdefault("src_nt_host", host)
    user = pick("Account_Name")
    if user:
        found.setdefault("user", user)
    dest = pick("ComputerName")
    if dest:
        found.setdefault("dest", dest)
    code = found.get("EventCode")
    if code:
        found.setdefault("signature_id", code)
        if code in _FAILURE or (code == "4776" and found.get("Status", "0x0") != "0x0"):
            found.setdefault("action", "failure")
        elif code in _SUCCESS:
            found.setdefault("action", "success")
    add_src_ip(found)


def extract_windows(raw: str) -> Fields:
    found: Fields = {}
    if raw.lstrip().startswith("<Event"):
        _xml(raw, found)
    else:
        _classic(raw, found)
    _cim(found)
    return found


WINDOWS_FIELDS = frozenset(
    [*_XML_SYSTEM, *XML_ALIASES, *XML_ALIASES.values(), *_CLASSIC_HEADER, *_MESSAGE_KEYS, *CIM]
)

WINDOWS = SourcetypeExtraction(
    "windows",
    ("WinEventLog", "WinEventLog:*", "XmlWinEventLog", "XmlWinEventLog:*", "wineventlog"),
    extract_windows,
    WINDOWS_FIELDS,
)
