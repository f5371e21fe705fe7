#!/usr/bin/env python3
"""Read a deploy env file (KEY=VALUE lines) for deploy.sh; standard library only.

    envfile.py check FILE                    every key is known; one error line per problem
    envfile.py parameters FILE OUT [K=V…]    write the stack parameters (JSON) to OUT; the
                                             K=V given by deploy.sh win over the file
    envfile.py secret FILE CURRENT OUT       write the app secret (JSON) to OUT; print
                                             "changed" or "unchanged" compared with CURRENT
    envfile.py value FILE KEY OUT            write one value to OUT (nothing when absent)

Values are never printed. Keys:

* credentials (stored in the app secret): the names in CREDENTIALS;
* BOT_DATABASE_URL: an existing PostgreSQL database (its own secret); absent: RDS is created;
* bot settings passed as stack parameters: the names in SETTINGS;
* STACK_<Parameter>: any other stack parameter (STACK_VpcId, STACK_CertificateArn, …).
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from pathlib import Path

CREDENTIALS = (
    "BOT_CONSOLE_TOKEN",
    "BOT_SESSION_SECRET",
    "BOT_OIDC_CLIENT_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "TEAMS_APP_PASSWORD",
    "PAGERDUTY_ROUTING_KEY",
    "PAGERDUTY_ROUTING_KEYS",
    "PAGERDUTY_API_TOKEN",
    "PAGERDUTY_WEBHOOK_SECRETS",
    "SPLUNK_TOKEN",
    "SPLUNK_PASSWORD",
)
SETTINGS = {
    "BOT_PUBLIC_URL": "PublicUrl",
    "BOT_RCA": "RcaEngine",
    "BOT_LOG_LEVEL": "LogLevel",
    "BEDROCK_MODEL_ID": "BedrockModelId",
    "SPLUNK_HOST": "SplunkHost",
    "SPLUNK_PORT": "SplunkPort",
    "SPLUNK_USERNAME": "SplunkUsername",
    "SLACK_DEFAULT_CHANNEL": "SlackDefaultChannel",
    "TEAMS_APP_ID": "TeamsAppId",
    "TEAMS_TENANT_ID": "TeamsTenantId",
    "PAGERDUTY_FROM_EMAIL": "PagerDutyFromEmail",
    "BOT_AUTH_MODE": "AuthMode",
    "BOT_IDENTITY_CLAIM": "IdentityClaim",
    "BOT_OIDC_ISSUER": "OidcIssuer",
    "BOT_OIDC_CLIENT_ID": "OidcClientId",
}
#: made once when the env file does not give them, then kept
GENERATED = ("BOT_CONSOLE_TOKEN", "BOT_SESSION_SECRET")
DATABASE_URL = "BOT_DATABASE_URL"
_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")


class EnvFileError(Exception):
    pass


def read(path: Path) -> dict[str, str]:
    """The file's keys and values; EnvFileError naming each bad line or unknown key."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise EnvFileError(f"{path}: cannot read: {exc.strerror}") from None
    values: dict[str, str] = {}
    problems = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append(f"{path}:{number}: not KEY=VALUE")
            continue
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        known = key in CREDENTIALS or key in SETTINGS or key == DATABASE_URL
        if not known and not key.startswith("STACK_"):
            problems.append(
                f"{path}:{number}: {key}: not a setting deploy.sh knows (credentials: "
                f"{', '.join(CREDENTIALS)}; settings: {', '.join(SETTINGS)}, {DATABASE_URL}; "
                "or STACK_<StackParameter>)"
            )
            continue
        values[key] = value
    if problems:
        raise EnvFileError("\n".join(problems))
    return values


def parameters(values: dict[str, str], fixed: list[str]) -> list[dict[str, str]]:
    found = {SETTINGS[k]: v for k, v in values.items() if k in SETTINGS}
    found |= {k.removeprefix("STACK_"): v for k, v in values.items() if k.startswith("STACK_")}
    found |= dict(item.split("=", 1) for item in fixed)
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(found.items())]


def secret(values: dict[str, str], current_text: str) -> dict[str, str]:
    """Every credential (blank when not given); the GENERATED ones are kept or made once."""
    try:
        current = json.loads(current_text) if current_text.strip() else {}
    except json.JSONDecodeError:
        current = {}
    wanted = {key: values.get(key, "") for key in CREDENTIALS}
    for key in GENERATED:
        if not wanted[key]:
            wanted[key] = current.get(key) or secrets.token_urlsafe(32)
    return wanted


def main(argv: list[str]) -> int:
    try:
        command, path, *rest = argv
        values = read(Path(path))
        if command == "check":
            return 0
        if command == "parameters":
            out, *fixed = rest
            Path(out).write_text(json.dumps(parameters(values, fixed), indent=1))
            return 0
        if command == "secret":
            current_path, out = rest
            current_text = Path(current_path).read_text()
            wanted = secret(values, current_text)
            try:
                unchanged = json.loads(current_text) == wanted
            except json.JSONDecodeError:
                unchanged = False
            Path(out).write_text(json.dumps(wanted, sort_keys=True))
            print("unchanged" if unchanged else "changed")
            return 0
        if command == "value":
            key, out = rest
            Path(out).write_text(values.get(key, ""))
            return 0
    except EnvFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError:
        pass
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
