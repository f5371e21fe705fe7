"""Shell: run one allowlisted command on the bot's own machine (embedded default only).

``run`` starts ``command`` with ``args`` directly (no shell: nothing in an argument is
interpreted), stdin closed, a small environment (``PATH``, ``LANG``, ``HOME``), and kills it when
the step's timeout passes. ``command`` must be on ``BOT_PLAYBOOK_SHELL_ALLOWLIST`` (comma
separated names or absolute paths) exactly as listed. Each argument may only hold letters,
digits and ``_ . , : / = @ + % -`` (at most 32 arguments of 256 characters), because values filled
in from an incident's labels come from log lines. A non-zero exit fails the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence

from bot.errors import PermanentError
from bot.ports import ExecutionPlan, ParamValue, StepResult
from integrations.steps import Params, check_params, check_timeout, clip, frozen

_ARG = re.compile(r"^[A-Za-z0-9_.,:/=@+%-]{1,256}$")
MAX_ARGS = 32


class ShellExecutor:
    """Action ``run``; target ``shell:<command>``."""

    name = "shell"

    def __init__(self, allowlist: Sequence[str]) -> None:
        self._allowlist = tuple(item.strip() for item in allowlist if item.strip())

    async def plan(
        self, action: str, params: Mapping[str, ParamValue], timeout_s: float
    ) -> ExecutionPlan:
        check_params(self.name, action, params)
        timeout = check_timeout(timeout_s)
        read = Params(f"shell {action}", params)
        command = read.text("command")
        if command not in self._allowlist:
            listed = ", ".join(self._allowlist) or "nothing (BOT_PLAYBOOK_SHELL_ALLOWLIST is empty)"
            raise PermanentError(
                f"shell run: command {command!r} is not on the allowlist"
                f" (BOT_PLAYBOOK_SHELL_ALLOWLIST allows {listed})"
            )
        path = resolve(command)
        args = arguments(read)
        values: dict[str, ParamValue] = {"command": command, "args": args}
        line = shlex.join([command, *args])
        return ExecutionPlan(
            executor=self.name,
            action=action,
            target=f"shell:{command}",
            description=f"shell run {line} ({path}, no shell, killed after {timeout:g}s)",
            params=frozen(values),
            timeout_s=timeout,
        )

    async def run(self, plan: ExecutionPlan) -> StepResult:
        read = Params.of(plan)
        command = read.text("command")
        if command not in self._allowlist:  # the list may have changed since the plan
            raise PermanentError(f"shell run: command {command!r} is no longer on the allowlist")
        path = resolve(command)
        args = arguments(read)
        env = {key: os.environ[key] for key in ("PATH", "LANG", "HOME") if key in os.environ}
        process = await asyncio.create_subprocess_exec(
            path,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(plan.timeout_s):
                out, err = await process.communicate()
        except TimeoutError:
            await _kill(process)
            return StepResult(
                ok=False,
                error=f"{shlex.join([command, *args])} was killed after {plan.timeout_s:g}s",
            )
        except BaseException:  # cancelled (the bot stops): no command outlives its step
            await asyncio.shield(_kill(process))
            raise
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        if process.returncode != 0:
            return StepResult(
                ok=False,
                output=clip(stdout),
                error=clip(f"{command} exited with {process.returncode}: {stderr or stdout}"),
            )
        return StepResult(ok=True, output=clip(stdout))


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the command and everything it started (its own session), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def resolve(command: str) -> str:
    """The executable's path; PermanentError when it is not there."""
    found = shutil.which(command) if not os.path.isabs(command) else command
    if not found or not os.access(found, os.X_OK):
        raise PermanentError(f"shell run: command {command!r} is not installed on this machine")
    return found


def arguments(read: Params) -> tuple[str, ...]:
    """The ``args`` parameter (a list, or text split like a shell would), each one checked."""
    if not read.has("args"):
        return ()
    value = read.value("args")
    try:
        args = tuple(shlex.split(value)) if isinstance(value, str) else read.lines("args")
    except ValueError as exc:
        raise PermanentError(f"shell run: args cannot be split ({exc})") from None
    if len(args) > MAX_ARGS:
        raise PermanentError(f"shell run: at most {MAX_ARGS} args (got {len(args)})")
    for arg in args:
        if not _ARG.match(arg):
            raise PermanentError(
                f"shell run: argument {arg!r} may only hold letters, digits and _ . , : / = @ + % -"
            )
    return args


__all__ = ["MAX_ARGS", "ShellExecutor"]
