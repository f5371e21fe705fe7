"""Web server logs: access lines in the combined format (``access_combined``,
``nginx:access``) and Apache's and nginx's error logs.

Access fields are named as Splunk's ``access-extractions`` names them (``clientip``,
``ident``, ``user``, ``req_time``, ``method``, ``uri``, ``uri_path``, ``uri_query``,
``version``, ``status``, ``bytes``, ``referer``, ``useragent``) plus the CIM Web names
(``src``, ``http_method``, ``http_user_agent``, ``http_referrer``, ``url``).
"""

from __future__ import annotations

import re

from detectors.fields.model import Fields, SourcetypeExtraction, add_src_ip

_ACCESS_RE = re.compile(
    r"^(?P<clientip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<req_time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<uri>\S+)(?: (?P<version>[^"]*))?" '
    r"(?P<status>\d{3}) (?P<bytes>\d+|-)"
    r'(?: "(?P<referer>[^"]*)" "(?P<useragent>[^"]*)")?'
)
ACCESS_FIELDS = frozenset(
    {
        *_ACCESS_RE.groupindex,
        "uri_path",
        "uri_query",
        "src",
        "src_ip",
        "http_method",
        "http_user_agent",
        "http_referrer",
        "url",
    }
)


def extract_access(raw: str) -> Fields:
    m = _ACCESS_RE.match(raw)
    if m is None:
        return {}
    found = {k: v for k, v in m.groupdict().items() if v is not None and v != "-"}
    uri = found.get("uri")
    if uri is not None:
        path, _, query = uri.partition("?")
        found["uri_path"] = path
        if query:
            found["uri_query"] = query
        found["url"] = uri
    for cim, name in (
        ("src", "clientip"),
        ("http_method", "method"),
        ("http_user_agent", "useragent"),
        ("http_referrer", "referer"),
    ):
        if name in found:
            found[cim] = found[name]
    add_src_ip(found)
    return found


_APACHE_ERROR_RE = re.compile(
    r"^\[(?P<error_time>[^\]]+)\] \[(?:(?P<module>[\w-]+):)?(?P<log_level>[a-z]+\d?)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?"
    r"(?: \((?P<os_error>\d+)\)[^:\[]*:)?"
    r"(?: \[client (?P<client>[^\]\s]+?)(?::(?P<client_port>\d+))?\])?"
    r" (?:(?P<error_code>AH\d{5}): )?(?P<message>.*)$",
    re.DOTALL,
)
_NGINX_ERROR_RE = re.compile(
    r"^(?P<error_time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<log_level>\w+)\] "
    r"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection_id>\d+) )?(?P<message>.*?)"
    r"(?:, client: (?P<client>[^,\s]+))?(?:, server: (?P<server>[^,\s]*))?"
    r'(?:, request: "(?P<request>[^"]*)")?(?:, upstream: "(?P<upstream>[^"]*)")?'
    r'(?:, host: "[^"]*")?(?:, referrer: "[^"]*")?$',
    re.DOTALL,
)
ERROR_FIELDS = frozenset(
    {*_APACHE_ERROR_RE.groupindex, *_NGINX_ERROR_RE.groupindex, "src", "src_ip", "severity"}
)


def extract_error(raw: str) -> Fields:
    m = _APACHE_ERROR_RE.match(raw) or _NGINX_ERROR_RE.match(raw)
    if m is None:
        return {}
    found = {k: v for k, v in m.groupdict().items() if v}
    if "client" in found:
        found["src"] = found["client"]
    if "log_level" in found:
        found["severity"] = found["log_level"]
    add_src_ip(found)
    return found


ACCESS = SourcetypeExtraction(
    "access_combined",
    (
        "access_combined",
        "access_combined_wcookie",
        "access_common",
        "apache:access",
        "apache:access:combined",
        "nginx:access",
        "nginx:plus:access",
    ),
    extract_access,
    ACCESS_FIELDS,
)
ERRORS = SourcetypeExtraction(
    "web_error",
    ("apache:error", "apache_error", "nginx:error", "nginx:plus:error"),
    extract_error,
    ERROR_FIELDS,
)
