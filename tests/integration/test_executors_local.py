"""The executors that need no cloud: HTTP against a loopback server, shell through real
subprocesses, and the generator fix against a real event store and the shipped rule."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.domain.hits import SearchQuery
from bot.errors import PermanentError, TransientError
from detectors.rules import load_rules
from detectors.runner import run_rule
from detectors.window import Window
from integrations.executors import build_executors, load_executor_settings
from integrations.http.executor import HttpExecutor
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.fix import GeneratorExecutor
from integrations.local.generator import Generator
from integrations.local.shell import ShellExecutor

# HTTP ----------------------------------------------------------------------------------------


@dataclass
class OpsServer:
    """A loopback HTTP endpoint: records each request, answers from a script (then 200)."""

    url: str = ""
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def ops() -> Iterator[OpsServer]:
    state = OpsServer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append((self.command, self.path, dict(self.headers), body))
            status, headers, reply = state.answers.pop(0) if state.answers else (200, {}, b"{}")
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_http_posts_json_to_an_allowlisted_url(ops: OpsServer) -> None:
    executor = HttpExecutor([f"{ops.url}/ops"], token="s3cret-token")
    plan = await executor.plan(
        "request", {"url": f"{ops.url}/ops/drain?host=web-2", "body": '{"host": "web-2"}'}, 5
    )
    assert plan.target == f"http:{ops.url}/ops/drain?host=web-2"
    assert plan.description == (
        f'http POST {ops.url}/ops/drain?host=web-2 body={{"host":"web-2"}}, expect 2xx (within 5s)'
    )
    assert ops.received == []  # planning sent nothing
    ops.answers.append((202, {}, b'{"draining": true}'))

    result = await executor.run(plan)

    assert result.ok and result.output == '202: {"draining": true}'
    [(method, path, headers, body)] = ops.received
    assert (method, path, json.loads(body)) == ("POST", "/ops/drain?host=web-2", {"host": "web-2"})
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer s3cret-token"


async def test_http_refuses_a_url_off_the_allowlist_naming_it(ops: OpsServer) -> None:
    executor = HttpExecutor([f"{ops.url}/ops"])
    with pytest.raises(PermanentError) as refused:
        await executor.plan("request", {"url": f"{ops.url}/admin"}, 5)
    assert str(refused.value) == (
        f"http request: {ops.url}/admin is not on the allowlist"
        f" (BOT_PLAYBOOK_HTTP_ALLOWLIST allows {ops.url}/ops)"
    )
    assert ops.received == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://ops.example.com/apix/drain", "not on the allowlist"),
        ("https://ops.example.com.evil.net/api/drain", "not on the allowlist"),
        ("https://ops.example.com@evil.net/api/drain", "carries credentials"),
        ("https://ops.example.com/api/../admin", "path segments"),
        ("file:///etc/passwd", "not an http"),
    ],
)
async def test_http_allowlist_prefixes_match_only_at_a_boundary(url: str, message: str) -> None:
    executor = HttpExecutor(["https://ops.example.com/api"])
    with pytest.raises(PermanentError, match=message):
        await executor.plan("request", {"url": url}, 5)
    ok = await executor.plan("request", {"url": "https://OPS.example.com/api/drain"}, 5)
    assert ok.target == "http:https://ops.example.com/api/drain"


async def test_http_with_an_empty_allowlist_refuses_everything(ops: OpsServer) -> None:
    with pytest.raises(PermanentError, match="BOT_PLAYBOOK_HTTP_ALLOWLIST is empty"):
        await HttpExecutor([]).plan("request", {"url": f"{ops.url}/ops"}, 5)


async def test_http_5xx_and_429_are_transient_with_retry_after(ops: OpsServer) -> None:
    executor = HttpExecutor([ops.url])
    plan = await executor.plan("request", {"url": f"{ops.url}/restart", "method": "put"}, 5)
    ops.answers += [(503, {"Retry-After": "7"}, b"busy"), (429, {"Retry-After": "2"}, b"")]
    with pytest.raises(TransientError, match="answered 503") as first:
        await executor.run(plan)
    assert first.value.retry_after == 7
    with pytest.raises(TransientError) as second:
        await executor.run(plan)
    assert second.value.retry_after == 2
    assert [method for method, *_ in ops.received] == ["PUT", "PUT"]


async def test_http_unexpected_status_is_a_failed_step(ops: OpsServer) -> None:
    executor = HttpExecutor([ops.url])
    plan = await executor.plan("request", {"url": f"{ops.url}/x", "expect_status": "202"}, 5)
    ops.answers.append((200, {}, b'{"queued": false}'))
    result = await executor.run(plan)
    assert not result.ok and "answered 200, expected 202" in result.error


async def test_http_unreachable_is_transient() -> None:
    executor = HttpExecutor(["http://127.0.0.1:9"])
    plan = await executor.plan("request", {"url": "http://127.0.0.1:9/ops"}, 2)
    with pytest.raises(TransientError, match="ConnectError"):
        await executor.run(plan)


def test_allowlist_entries_are_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_PLAYBOOK_HTTP_ALLOWLIST", "https://ops.example.com, ftp://files")
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="BOT_PLAYBOOK_HTTP_ALLOWLIST: 'ftp://files'"):
        load_executor_settings()


# shell ---------------------------------------------------------------------------------------


async def test_shell_runs_an_allowlisted_command_without_a_shell() -> None:
    executor = ShellExecutor(["echo"])
    plan = await executor.plan("run", {"command": "echo", "args": ("freed", "1.2G")}, 5)
    assert plan.target == "shell:echo" and plan.description.startswith("shell run echo freed 1.2G")
    result = await executor.run(plan)
    assert result.ok and result.output == "freed 1.2G"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"command": "rm", "args": "-rf /"}, "'rm' is not on the allowlist"),
        ({"command": "/bin/echo"}, "'/bin/echo' is not on the allowlist"),
        ({"command": "echo", "args": ("a;reboot",)}, "argument 'a;reboot'"),
        ({"command": "echo", "args": "$(id)"}, r"argument '\$\(id\)'"),
        ({"command": "echo", "flags": "-n"}, "unknown parameter flags"),
    ],
)
async def test_shell_refuses_other_commands_and_unsafe_arguments(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(PermanentError, match=message):
        await ShellExecutor(["echo"]).plan("run", params, 5)


async def test_shell_failure_and_timeout_are_failed_steps() -> None:
    executor = ShellExecutor(["false", "sleep"])
    failed = await executor.run(await executor.plan("run", {"command": "false"}, 5))
    assert not failed.ok and "false exited with 1" in failed.error
    slow = await executor.run(await executor.plan("run", {"command": "sleep", "args": "5"}, 0.3))
    assert not slow.ok and "sleep 5 was killed after 0.3s" in slow.error


def _running(*cmdline: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            argv = (proc / "cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
        except OSError:
            continue
        if [Path(argv[0]).name, *argv[1:]] == list(cmdline):
            return True
    return False


async def test_a_cancelled_shell_step_leaves_no_command_running() -> None:
    executor = ShellExecutor(["sleep"])
    plan = await executor.plan("run", {"command": "sleep", "args": "41.25"}, 60)
    step = asyncio.create_task(executor.run(plan))
    for _ in range(100):
        if _running("sleep", "41.25"):
            break
        await asyncio.sleep(0.02)
    assert _running("sleep", "41.25")
    step.cancel()  # the bot stops, or the kill switch takes the task down
    with pytest.raises(asyncio.CancelledError):
        await step
    assert not _running("sleep", "41.25")


# the generator fix ---------------------------------------------------------------------------

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.db") as events:
        yield events


async def test_ending_a_scenario_stops_its_events_and_its_rule_clears(store: EventStore) -> None:
    generator = Generator(store, seed=4)
    [rule] = [r for r in load_rules([]) if r.id == "disk-filling"]
    backend = LocalSearchBackend(store)
    disk = "index=metrics metric=disk_used_pct host=db-1 value>=85"

    async def scenario_events(after: datetime) -> int:
        return len(await backend.search(SearchQuery(disk, after, after + timedelta(hours=1))))

    async def fires(at: datetime) -> bool:
        window = Window.sliding(at, rule.window, previous_end=None)
        return bool((await run_rule(rule, backend, window, str)).alerts)

    store.add(generator.noise(T0, 600))
    assert generator.start("disk-filling", T0) > 0
    assert generator.advance(T0 + timedelta(seconds=30)) == 0  # its next minute is not due yet
    assert generator.advance(T0 + timedelta(seconds=61)) > 0  # it keeps happening
    assert generator.running() == ("disk-filling",)
    fixed_at = T0 + timedelta(seconds=70)
    assert await fires(fixed_at)

    executor = GeneratorExecutor(generator)
    plan = await executor.plan("end-scenario", {"scenario": "disk-filling", "host": "db-1"}, 10)
    assert plan.target == "generator:disk-filling@db-1"
    result = await executor.run(plan)
    assert result.ok and result.output == "ended scenario disk-filling; its log lines stopped"

    later = fixed_at + rule.window + timedelta(minutes=2)
    assert generator.advance(later) == 0
    store.add(generator.noise(later, (later - T0).total_seconds()))
    assert generator.running() == ()
    assert await scenario_events(fixed_at) == 0  # not one line of it since the fix
    assert not await fires(later)  # a fresh window: the rule has cleared

    again = await executor.run(plan)
    assert again.ok and "was not running" in again.output


async def test_a_running_scenario_left_alone_keeps_its_rule_firing(store: EventStore) -> None:
    generator = Generator(store, seed=4)
    [rule] = [r for r in load_rules([]) if r.id == "disk-filling"]
    generator.start("disk-filling", T0)
    later = T0 + rule.window + timedelta(minutes=2)
    for minute in range(1, int((later - T0).total_seconds() // 60) + 1):
        generator.advance(T0 + timedelta(minutes=minute, seconds=1))
    window = Window.sliding(later, rule.window, previous_end=None)
    assert (await run_rule(rule, LocalSearchBackend(store), window, str)).alerts


async def test_a_scenario_started_for_a_while_ends_by_itself(store: EventStore) -> None:
    generator = Generator(store, seed=4)
    generator.start("high-cpu", T0, lasts_s=90)
    assert generator.advance(T0 + timedelta(seconds=61)) > 0
    assert generator.advance(T0 + timedelta(seconds=125)) == 0
    assert generator.running() == ()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scenario": "meltdown"}, "unknown scenario 'meltdown'"),
        ({"scenario": "disk-filling", "host": "db-2"}, "happens on db-1, not on db-2"),
    ],
)
async def test_end_scenario_refuses_an_unknown_scenario_or_the_wrong_host(
    store: EventStore, params: dict[str, str], message: str
) -> None:
    with pytest.raises(PermanentError, match=message):
        await GeneratorExecutor(Generator(store)).plan("end-scenario", params, 10)


def test_the_generator_executor_exists_only_on_the_embedded_default(store: EventStore) -> None:
    settings = load_executor_settings()
    generator = Generator(store)
    assert "generator" in build_executors(settings, generator, embedded=True)
    assert "generator" not in build_executors(settings, generator, embedded=False)
    assert "shell" not in build_executors(settings, generator, embedded=False)
