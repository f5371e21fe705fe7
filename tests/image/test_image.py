"""The container image, built and run as ECS runs it.

Builds ``infrastructure/Dockerfile`` with podman on a Debian bookworm base made by mmdebstrap
(no registry needed), then starts the image's own entry point as its non-root user with the
environment of the task definition in ``infrastructure/ecs/stack.yaml`` (secrets: a console
token, blanks for the chat and paging credentials, as deploy.sh writes them, and a PostgreSQL
database) and asks ``/health``, ``/ready`` and the image's HEALTHCHECK.

Runs with ``make image-test`` (``IMAGE_TEST=1``); skipped with the reason where podman, buildah
or mmdebstrap is missing, failing instead under ``REQUIRE_IMAGE=1`` (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.taskenv import container_environment, container_secret_names, deployed_secret

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infrastructure" / "ecs" / "stack.yaml"
IMAGE_SH = ROOT / "infrastructure" / "image.sh"
BASE = "localhost/incident-bot-base:bookworm"
IMAGE = "localhost/incident-bot:image-test"
PODMAN_BUILD = "podman --cgroup-manager=cgroupfs build --isolation=chroot --format docker"
BUILDAH_RUN = ["buildah", "--cgroup-manager=cgroupfs", "run", "--isolation=chroot"]


def _missing_tools() -> str | None:
    missing = [t for t in ("podman", "buildah", "mmdebstrap") if shutil.which(t) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed (apt-get install podman buildah mmdebstrap); "
            "CI installs them"
        )
    return None


@pytest.fixture(scope="module", autouse=True)
def _image_tools() -> None:
    if os.environ.get("IMAGE_TEST") != "1":
        pytest.skip("the image test runs with `make image-test`")
    reason = _missing_tools()
    if reason:
        if os.environ.get("REQUIRE_IMAGE") == "1":
            pytest.fail(f"REQUIRE_IMAGE=1 but {reason}")
        pytest.skip(reason)


def _run(args: list[str], timeout: float, **env: str) -> str:
    started = time.monotonic()
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=ROOT,
        check=False,
    )
    took = time.monotonic() - started
    print(f"{' '.join(args[:4])}: {took:.1f}s", file=sys.stderr)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def image() -> dict[str, object]:
    """Build the image (cached wheelhouse and base tarball) and answer its config."""
    _run([str(IMAGE_SH), "base", BASE], timeout=240)
    _run(
        [str(IMAGE_SH), "build", IMAGE],
        timeout=360,
        BASE_IMAGE=BASE,
        CONTAINER_BUILD=PODMAN_BUILD,
        PYTHON=sys.executable,
    )
    inspected = json.loads(_run(["podman", "image", "inspect", IMAGE], timeout=30))
    config: dict[str, object] = {
        **inspected[0]["Config"],
        "Healthcheck": inspected[0]["Healthcheck"],
    }
    return config


@pytest.fixture
def container(image: dict[str, object]) -> Iterator[str]:
    name = _run(["buildah", "from", "--pull-never", IMAGE], timeout=60).strip()
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, timeout=60, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _listener_uid(port: int) -> int | None:
    """The uid of the process listening on ``port`` (read from /proc, as the host sees it)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return os.stat(f"/proc/{pid}").st_uid
    return None


def test_the_image_serves_health_and_ready_as_the_task_runs_it(
    image: dict[str, object], container: str, postgres_url: str, tmp_path: Path
) -> None:
    user = str(image.get("User") or "")
    assert user and user.split(":")[0] not in ("0", "root"), f"image runs as {user!r}"
    command = [*image["Entrypoint"], *(image.get("Cmd") or [])]  # type: ignore[misc]
    assert command == ["python", "run_bot.py", "run"]
    healthcheck = image.get("Healthcheck") or {}
    assert healthcheck, "the image has no HEALTHCHECK"

    port = _free_port()
    environment = container_environment(STACK)
    # the app secret as deploy.sh writes it with no credentials given (blank, except the
    # console token and session secret it makes), and a PostgreSQL database
    secret = deployed_secret(ROOT)
    assert set(container_secret_names(STACK)) == {*secret, "BOT_DATABASE_URL"}
    environment.update(secret, BOT_HTTP_PORT=str(port), BOT_DATABASE_URL=postgres_url)
    settings = [arg for key, value in environment.items() for arg in ("--env", f"{key}={value}")]
    subprocess.run(["buildah", "config", *settings, container], check=True, timeout=30)

    log = (tmp_path / "bot.log").open("w+")
    process = subprocess.Popen(
        [*BUILDAH_RUN, "--network=host", container, "--", *command],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        health: tuple[int, dict[str, object]] = (0, {})
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = _get(f"{base}/health")
                break
            except OSError:
                time.sleep(0.5)
        log.seek(0)
        assert health[0] == 200, f"/health never answered; the bot said:\n{log.read()[-4000:]}"
        started = time.monotonic() - (deadline - 90)
        print(f"entry point answered /health after {started:.1f}s", file=sys.stderr)

        # ready once the database is connected and migrated (503 until then, as on the ALB)
        status, report = _get(f"{base}/ready")
        while status != 200 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            status, report = _get(f"{base}/ready")
        log.seek(0)
        assert status == 200, f"{json.dumps(report)}\n{log.read()[-4000:]}"
        assert report["checks"]["database"]["status"] == "ok"  # type: ignore[index]

        uid = _listener_uid(port)
        assert uid is not None and uid != 0, f"the server runs as uid {uid}"

        probe = [str(part) for part in healthcheck["Test"][1:]]  # type: ignore[index]
        _run([*BUILDAH_RUN, "--network=host", container, "--", *probe], timeout=30)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
