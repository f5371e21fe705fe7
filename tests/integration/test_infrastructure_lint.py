"""The deployment files pass their linters: cfn-lint (the stack), hadolint (the Dockerfile) and
shellcheck (every shell script), as installed in the project's environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.image.taskenv import container_secret_names, envfile_module

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHELL_SCRIPTS = sorted(
    [ROOT / ".ci" / "run", *ROOT.glob("infrastructure/**/*.sh")],
)


def _lint(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_stack_is_cfn_lint_clean() -> None:
    result = _lint(BIN / "cfn-lint", ROOT / "infrastructure" / "ecs" / "stack.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_is_hadolint_clean() -> None:
    result = _lint(BIN / "hadolint", ROOT / "infrastructure" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    result = _lint(BIN / "shellcheck", "--external-sources", script)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_shell_script_is_checked() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SHELL_SCRIPTS}
    assert {".ci/run", "infrastructure/deploy.sh", "infrastructure/image.sh"} <= names


def test_the_task_definition_takes_every_credential_deploy_sh_stores() -> None:
    stack = ROOT / "infrastructure" / "ecs" / "stack.yaml"
    credentials = set(envfile_module(ROOT).CREDENTIALS)
    assert set(container_secret_names(stack)) == {*credentials, "BOT_DATABASE_URL"}
