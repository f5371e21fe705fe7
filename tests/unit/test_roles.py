from __future__ import annotations

from pathlib import Path

import pytest

from bot.authz import IDENTITY_KINDS, Role, Roles
from bot.errors import ConfigError, PolicyViolation

VALID = """\
default_role: viewer
roles:
  admin: [console:alice, cli:root]
  responder: [slack:U0123ABC, slack-group:S0456DEF, teams:9f0c, pagerduty:PXYZ]
  viewer: []
"""


def roles_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roles.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def roles(tmp_path: Path) -> Roles:
    return Roles.load(roles_file(tmp_path, VALID))


def test_valid_file_maps_each_member_to_its_role(roles: Roles) -> None:
    assert roles.default_role is Role.VIEWER
    assert roles.members == {
        "console:alice": Role.ADMIN,
        "cli:root": Role.ADMIN,
        "slack:U0123ABC": Role.RESPONDER,
        "slack-group:S0456DEF": Role.RESPONDER,
        "teams:9f0c": Role.RESPONDER,
        "pagerduty:PXYZ": Role.RESPONDER,
    }
    assert not roles.embedded


def test_role_of_a_member(roles: Roles) -> None:
    assert roles.role_of("console:alice") is Role.ADMIN
    assert roles.role_of("slack:U0123ABC") is Role.RESPONDER
    assert roles.role_of("teams:9f0c") is Role.RESPONDER


def test_identities_are_exact(roles: Roles) -> None:
    assert roles.role_of("slack:u0123abc") is Role.VIEWER
    assert roles.role_of("console:alice2") is Role.VIEWER


def test_unlisted_identity_gets_the_default_role(tmp_path: Path) -> None:
    loaded = Roles.load(
        roles_file(tmp_path, "default_role: responder\nroles:\n  admin: [console:alice]\n")
    )
    assert loaded.role_of("slack:UNKNOWN") is Role.RESPONDER
    assert loaded.role_of("console:bob") is Role.RESPONDER
    assert loaded.role_of("console:alice") is Role.ADMIN


def test_default_role_is_viewer_when_the_file_does_not_say(tmp_path: Path) -> None:
    loaded = Roles.load(roles_file(tmp_path, "roles:\n  admin: [console:alice]\n"))
    assert loaded.role_of("console:bob") is Role.VIEWER


def test_empty_file_is_everyone_a_viewer(tmp_path: Path) -> None:
    loaded = Roles.load(roles_file(tmp_path, ""))
    assert loaded.members == {}
    assert loaded.role_of("console:alice") is Role.VIEWER


def test_listed_under_two_roles_gets_the_higher(tmp_path: Path) -> None:
    text = "roles:\n  responder: [console:alice, slack:U1]\n  admin: [console:alice]\n"
    loaded = Roles.load(roles_file(tmp_path, text))
    assert loaded.role_of("console:alice") is Role.ADMIN
    text = "roles:\n  admin: [console:alice]\n  responder: [console:alice]\n"
    assert Roles.load(roles_file(tmp_path, text)).role_of("console:alice") is Role.ADMIN


def test_slack_group_membership_raises_the_role(roles: Roles) -> None:
    assert roles.role_of("slack:UOTHER") is Role.VIEWER
    assert roles.role_of("slack:UOTHER", groups=["slack-group:S0456DEF"]) is Role.RESPONDER
    assert roles.role_of("slack:UOTHER", groups=["slack-group:SNOPE"]) is Role.VIEWER


def test_group_membership_never_lowers_the_role(tmp_path: Path) -> None:
    text = "roles:\n  admin: [slack:UBOSS]\n  viewer: [slack-group:SREAD]\n"
    loaded = Roles.load(roles_file(tmp_path, text))
    assert loaded.role_of("slack:UBOSS", groups=["slack-group:SREAD"]) is Role.ADMIN


def test_highest_of_several_groups_wins(tmp_path: Path) -> None:
    text = "roles:\n  responder: [slack-group:SA]\n  admin: [slack-group:SB]\n"
    loaded = Roles.load(roles_file(tmp_path, text))
    groups = ["slack-group:SA", "slack-group:SB"]
    assert loaded.role_of("slack:U9", groups=groups) is Role.ADMIN
    assert loaded.role_of("slack:U9", groups=list(reversed(groups))) is Role.ADMIN


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = roles_file(tmp_path, VALID + "admins: [console:bob]\n")
    with pytest.raises(ConfigError) as refused:
        Roles.load(path)
    assert str(refused.value) == f"{path}: admins: Extra inputs are not permitted"


def test_unknown_role_name_is_refused(tmp_path: Path) -> None:
    path = roles_file(tmp_path, "roles:\n  superuser: [console:alice]\n")
    with pytest.raises(ConfigError) as refused:
        Roles.load(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: roles.superuser")
    assert "'viewer', 'responder' or 'admin'" in message


def test_unknown_default_role_is_refused(tmp_path: Path) -> None:
    path = roles_file(tmp_path, "default_role: boss\n")
    with pytest.raises(ConfigError, match=r"default_role: Input should be 'viewer'"):
        Roles.load(path)


@pytest.mark.parametrize("identity", ["U0123ABC", "bogus:U1", "Slack:U1", "email:a@b.c"])
def test_bad_identity_kind_names_the_role_and_the_accepted_kinds(
    tmp_path: Path, identity: str
) -> None:
    path = roles_file(tmp_path, f"roles:\n  responder:\n    - slack:U1\n    - '{identity}'\n")
    with pytest.raises(ConfigError) as refused:
        Roles.load(path)
    assert str(refused.value) == (
        f"{path}: roles.responder: bad identity {identity!r}; use one of console:<id>, "
        "slack:<id>, slack-group:<id>, teams:<id>, pagerduty:<id>, cli:<id>"
    )


@pytest.mark.parametrize("kind", IDENTITY_KINDS)
def test_every_identity_kind_is_accepted(tmp_path: Path, kind: str) -> None:
    loaded = Roles.load(roles_file(tmp_path, f"roles:\n  responder: ['{kind}:X1']\n"))
    assert loaded.role_of(f"{kind}:X1") is Role.RESPONDER


def test_yaml_error_names_the_file_and_line(tmp_path: Path) -> None:
    text = "default_role: viewer\nroles:\n  admin: [console:alice]\n\tresponder: []\n"
    path = roles_file(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        Roles.load(path)
    assert str(refused.value) == f"{path}:4: not valid YAML"


def test_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as refused:
        Roles.load(path)
    assert str(refused.value) == f"{path}: cannot read the roles file: No such file or directory"


def test_roles_file_that_is_not_a_mapping_says_so(tmp_path: Path) -> None:
    path = roles_file(tmp_path, "- console:alice\n- cli:root\n")
    with pytest.raises(ConfigError) as refused:
        Roles.load(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert "_RolesFile" not in message
    assert ": : " not in message


# --- the embedded default ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "role"),
    [
        ("console:alice", Role.ADMIN),
        ("cli:root", Role.ADMIN),
        ("slack:U0123ABC", Role.VIEWER),
        ("slack-group:S1", Role.VIEWER),
        ("teams:9f0c", Role.VIEWER),
        ("pagerduty:PXYZ", Role.RESPONDER),
    ],
)
def test_embedded_default(identity: str, role: Role) -> None:
    assert Roles.embedded_default().role_of(identity) is role


def test_embedded_default_ignores_groups() -> None:
    assert Roles.embedded_default().role_of("slack:U1", groups=["console:x"]) is Role.VIEWER


# --- require -----------------------------------------------------------------------------------


def test_require_returns_the_role_when_it_is_enough(roles: Roles) -> None:
    assert roles.require("console:alice", Role.RESPONDER) is Role.ADMIN
    assert roles.require("slack:U0123ABC", Role.RESPONDER) is Role.RESPONDER
    assert roles.require("slack:UOTHER", Role.VIEWER) is Role.VIEWER


def test_require_refuses_a_viewer(roles: Roles) -> None:
    with pytest.raises(PolicyViolation) as refused:
        roles.require("slack:UOTHER", Role.RESPONDER)
    assert str(refused.value) == "you need the responder role (you are viewer)"


def test_require_refuses_a_responder_admin_work(roles: Roles) -> None:
    with pytest.raises(PolicyViolation, match=r"^you need the admin role \(you are responder\)$"):
        roles.require("slack:U0123ABC", Role.ADMIN)


def test_require_counts_group_membership(roles: Roles) -> None:
    assert roles.require("slack:UOTHER", Role.RESPONDER, ["slack-group:S0456DEF"]) is (
        Role.RESPONDER
    )


def test_require_on_the_embedded_default() -> None:
    embedded = Roles.embedded_default()
    assert embedded.require("console:alice", Role.ADMIN) is Role.ADMIN
    with pytest.raises(PolicyViolation, match="you need the responder role"):
        embedded.require("slack:U1", Role.RESPONDER)


@pytest.mark.parametrize(
    ("have", "needed", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.RESPONDER, False),
        (Role.RESPONDER, Role.VIEWER, True),
        (Role.RESPONDER, Role.ADMIN, False),
        (Role.ADMIN, Role.RESPONDER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_role_order(have: Role, needed: Role, allowed: bool) -> None:
    assert have.allows(needed) is allowed


def test_a_kind_wildcard_gives_every_identity_of_that_kind_its_role(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(
        "default_role: viewer\nroles:\n  responder: ['pagerduty:*']\n  admin: [pagerduty:PBOSS]\n"
    )
    roles = Roles.load(path)
    assert roles.role_of("pagerduty:PANY") is Role.RESPONDER
    assert roles.role_of("pagerduty:PBOSS") is Role.ADMIN  # a named entry wins
    assert roles.role_of("slack:U1") is Role.VIEWER
