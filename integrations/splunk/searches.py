"""The two ways a search runs on Splunk, as blocking calls for a worker thread.

* export: ``POST search/v2/jobs/export`` streams results while the search runs; nothing is
  left on the search head. Reading stops at the cap and the response is closed.
* normal job: ``POST search/v2/jobs`` (``exec_mode=normal``), poll until done, then read
  ``results`` (``count`` = the cap). The job stays inspectable in Splunk for its TTL.
"""

from __future__ import annotations

from typing import Any

from integrations.splunk.errors import SplunkSearchError, raise_for_messages
from integrations.splunk.results import ReadResult, read_results
from integrations.splunk.transport import Abort, Aborted

FIRST_POLL_S = 0.05
MAX_POLL_S = 1.0


def run_export(
    service: Any, text: str, params: dict[str, str], cap: int, abort: Abort
) -> ReadResult:
    stream = service.jobs.export(text, output_mode="json", **params)
    try:
        return read_results(stream, cap, abort)
    finally:
        stream.close()


def run_job(service: Any, text: str, params: dict[str, str], cap: int, abort: Abort) -> ReadResult:
    job = service.jobs.create(text, exec_mode="normal", **params)
    abort.job = job
    pause = FIRST_POLL_S
    while not job.is_done():
        if abort.wait(pause):
            raise Aborted("search aborted")
        pause = min(pause * 1.5, MAX_POLL_S)
    content = job.content
    messages = job_messages(content.get("messages"))
    raise_for_messages(messages)
    if content.get("isFailed") == "1" or content.get("dispatchState") == "FAILED":
        raise SplunkSearchError(f"Splunk: search job {job.sid} failed")
    stream = job.results(output_mode="json", count=cap)
    try:
        return read_results(stream, cap, abort)
    finally:
        stream.close()


def job_messages(value: object) -> list[tuple[str, str]]:
    """A job's ``messages`` as ``(level, text)`` pairs: Atom gives a dict of level -> text or
    list of texts; JSON gives a list of ``{"type", "text"}``."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for level, texts in value.items():
            for text in texts if isinstance(texts, list) else [texts]:
                if text:
                    found.append((str(level).upper(), str(text)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                found.append((str(item.get("type", "")).upper(), str(item.get("text", ""))))
    return found
