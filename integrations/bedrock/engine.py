"""Root-cause analysis by a model on Amazon Bedrock (``bedrock-runtime`` Converse).

One analysis: build the redacted evidence pack, fence it in the prompt, wait for a token of the
shared RPM budget, call Converse in a worker thread, check the answer and calibrate its
confidence. Every analysis is bounded by ``BEDROCK_TIMEOUT`` (waiting for the budget, the call
and its retries). Throttling is retried with jittered backoff inside that bound; a model that is
unavailable or refuses the request is replaced by ``BEDROCK_FALLBACK_MODEL_ID`` once. Anything
else (a refused answer, a timeout, an error) gives the fallback engine's report, saying that it
fell back and why: :meth:`BedrockRcaEngine.explain` never raises.

The engine only reads and advises. It holds no executor: a suggested playbook is a name from the
registry it was given, which policy may or may not let someone run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from bot.domain.hits import Evidence
from bot.domain.incident import Incident
from bot.domain.rca import RcaReport, RcaStatus
from bot.errors import ConfigError
from bot.health import HealthHook, ignore_health
from bot.ports import Clock, Health, HealthStatus, RcaContext, RcaEngine, SystemClock
from bot.redaction import Redactor
from integrations.bedrock.answer import (
    Answer,
    Rejected,
    RejectReason,
    answer_json,
    check_answer,
    describe,
    parse_answer,
    to_report,
)
from integrations.bedrock.client import (
    MODEL_REFUSED,
    RETRYABLE,
    THREADS,
    make_client,
    retry_after_of,
    status_of,
)
from integrations.bedrock.evidence import EvidencePack, build_pack, evidence_key
from integrations.bedrock.prompt import Prompt, build_prompt, new_nonce
from integrations.bedrock.settings import BedrockSettings
from integrations.bedrock.storm import Shared, StormGroups, adapt, same_cause, signature
from integrations.bedrock.throttle import RpmThrottle

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
FINISHED = frozenset({"end_turn", "stop_sequence"})


@dataclass(slots=True)
class BedrockStats:
    """Counters since start, and the RPM budget's waiting line right now."""

    throttle: RpmThrottle = field(repr=False)
    requests: int = 0  # Converse calls started
    throttled: int = 0  # of which Bedrock answered ThrottlingException
    errors: Counter[str] = field(default_factory=Counter)  # error code -> count
    rejected: Counter[str] = field(default_factory=Counter)  # refused answers by reason
    fallbacks: Counter[str] = field(default_factory=Counter)  # reports from the fallback engine
    fallback_model: int = 0  # analyses moved to BEDROCK_FALLBACK_MODEL_ID
    cache_hits: int = 0
    shared: int = 0  # analyses answered by their storm group's leader (no call of their own)

    @property
    def queue_depth(self) -> int:
        return self.throttle.depth

    @property
    def oldest_wait_s(self) -> float:
        return self.throttle.oldest_wait

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "errors": dict(self.errors),
            "rejected": dict(self.rejected),
            "fallbacks": dict(self.fallbacks),
            "fallback_model": self.fallback_model,
            "cache_hits": self.cache_hits,
            "shared": self.shared,
            "queue_depth": self.queue_depth,
            "oldest_wait_s": round(self.oldest_wait_s, 3),
        }


class _Failed(Exception):
    """No usable answer from Bedrock; ``kind`` counts it, ``str()`` explains it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class _Call:
    model_id: str
    response: Mapping[str, Any]
    attempts: int
    wall_ms: float

    @property
    def text(self) -> str:
        content = self.response.get("output", {}).get("message", {}).get("content", [])
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class BedrockRcaEngine:
    """Implements :class:`bot.ports.RcaEngine` with a model on Bedrock.

    ``fallback`` answers whenever Bedrock does not (normally the heuristic engine);
    ``playbooks`` are the only names a suggestion may use; ``client`` replaces the boto3 client
    built from ``settings``. Per incident, the last report is kept with the digest of its
    evidence ids: asking again with the same evidence costs nothing unless ``force`` is set.
    The audit metadata of an incident's last analysis is in :attr:`last_meta`.
    """

    def __init__(
        self,
        settings: BedrockSettings,
        fallback: RcaEngine,
        redactor: Redactor,
        playbooks: Sequence[str] = (),
        client: Any = None,
        clock: Clock | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        problems = settings.problems()
        if problems:
            raise ConfigError("\n".join(problems))
        self.settings = settings
        self._fallback = fallback
        self._redactor = redactor
        self._playbooks = frozenset(playbooks)
        self._playbook_list = tuple(sorted(self._playbooks))
        self._client = client if client is not None else make_client(settings)
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._nonce = nonce
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="bedrock")
        self._throttle = RpmThrottle(settings.rpm, monotonic=monotonic)
        self._cache: OrderedDict[int, tuple[str, RcaReport]] = OrderedDict()
        self._storm = StormGroups(monotonic)
        self.stats = BedrockStats(self._throttle)
        self.last_meta: OrderedDict[int, dict[str, str]] = OrderedDict()
        # told how each Converse call ended, as it ends (/ready's "rca:bedrock", bot.health)
        self.on_health: HealthHook = ignore_health

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    async def explain(
        self,
        incident: Incident,
        evidence: Sequence[Evidence],
        context: RcaContext,
        *,
        force: bool = False,
    ) -> RcaReport:
        force = force or bool(getattr(context, "force", False))
        key = evidence_key(evidence)
        cached = self._cache.get(incident.id)
        if not force and cached is not None and cached[0] == key:
            self._cache.move_to_end(incident.id)
            self.stats.cache_hits += 1
            return cached[1]
        meta: dict[str, str] = {"at": self._clock.now().isoformat()}
        try:
            report = await self._grouped(incident, evidence, context, meta, force)
        except _Failed as failed:
            return await self._fall_back(incident, evidence, context, meta, failed)
        except Exception as exc:  # never let a bug here lose the incident's analysis
            log.exception("Bedrock analysis of %s failed", incident.human_id)
            bug = _Failed("internal", f"internal error ({type(exc).__name__})")
            return await self._fall_back(incident, evidence, context, meta, bug)
        self._remember(incident.id, meta)
        report = _with_meta(report, meta)
        self._cache[incident.id] = (key, report)
        self._cache.move_to_end(incident.id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return report

    # a storm: one analysis per signature ------------------------------------------------------

    async def _grouped(
        self,
        incident: Incident,
        evidence: Sequence[Evidence],
        context: RcaContext,
        meta: dict[str, str],
        force: bool,
    ) -> RcaReport:
        """Lead the analysis of the incident's storm signature, or take the leader's answer
        with this incident's own evidence (see :mod:`integrations.bedrock.storm`)."""
        loop = asyncio.get_running_loop()
        pack = await loop.run_in_executor(
            self._threads, self._pack, incident, tuple(evidence), context
        )
        if force or not pack.lines:
            return (await self._analyse(incident, pack, meta))[0]
        key = await loop.run_in_executor(self._threads, signature, incident, pack.lines)
        for _ in range(3):  # a failed leader hands over to the next member
            future, leads = self._storm.join(key, incident.id)
            if leads:
                shared: Shared | None = None
                try:
                    report, answer = await self._analyse(incident, pack, meta)
                    engine = report.engine
                    shared = Shared(incident, answer, pack.lines, engine, dict(meta))
                    return report
                finally:
                    self._storm.settle(key, future, shared)
            shared = await asyncio.shield(future)
            if shared is None:
                continue
            adapted = await loop.run_in_executor(self._threads, adapt, shared, incident, pack.lines)
            if adapted is None:
                break
            try:
                check_answer(adapted, pack, self._playbooks)
            except Rejected as refused:
                log.info(
                    "%s's answer does not hold for %s: %s",
                    shared.leader.human_id,
                    incident.human_id,
                    refused,
                )
                break
            shared.followers += 1
            self.stats.shared += 1
            meta.update(
                {k: v for k, v in shared.meta.items() if k not in ("at", "answer")},
                shared_with=shared.leader.human_id,
                answer=answer_json(adapted),
            )
            report = to_report(adapted, pack, shared.engine, self._playbooks)
            return replace(report, summary=f"{report.summary} ({same_cause(shared)})")
        return (await self._analyse(incident, pack, meta))[0]

    # one analysis -----------------------------------------------------------------------------

    async def _analyse(
        self,
        incident: Incident,
        pack: EvidencePack,
        meta: dict[str, str],
    ) -> tuple[RcaReport, Answer]:
        started = self._monotonic()
        budget = self.settings.timeout_s
        prompt = build_prompt(pack, incident.human_id, self._playbook_list, self._nonce)
        meta.update(
            prompt_sha256=prompt.sha256,
            model_id=self.settings.model_id,
            pack_tokens=str(pack.tokens),
            pack_lines=str(len(pack.lines)),
            omitted=json.dumps(dict(pack.omitted), sort_keys=True),
        )
        try:
            async with asyncio.timeout(max(0.0, started + budget - self._monotonic())):
                call = await self._converse(prompt, started + budget)
        except TimeoutError:
            self._unhealthy(f"no answer within {budget:g}s (BEDROCK_TIMEOUT)")
            raise _Failed("timeout", f"no answer within {budget:g}s") from None
        usage = call.response.get("usage", {})
        meta.update(
            model_id=call.model_id,
            engine=f"bedrock:{call.model_id}",
            input_tokens=str(usage.get("inputTokens", "")),
            output_tokens=str(usage.get("outputTokens", "")),
            latency_ms=str(call.response.get("metrics", {}).get("latencyMs", "")),
            wall_ms=f"{call.wall_ms:.0f}",
            attempts=str(call.attempts),
            stop_reason=str(call.response.get("stopReason", "")),
        )
        try:
            if meta["stop_reason"] not in FINISHED:
                raise Rejected(RejectReason.INCOMPLETE, f"stopped by {meta['stop_reason']!r}")
            answer = parse_answer(call.text)
            meta["answer"] = answer_json(answer)
            check_answer(answer, pack, self._playbooks)
        except Rejected as refused:
            self.stats.rejected[refused.reason.value] += 1
            meta["rejected"] = str(refused)
            log.warning("Bedrock answer for %s refused: %s", incident.human_id, refused)
            raise _Failed(
                "rejected", f"its answer was refused: {describe(refused.reason)}"
            ) from None
        return to_report(answer, pack, f"bedrock:{call.model_id}", self._playbooks), answer

    def _pack(
        self, incident: Incident, evidence: tuple[Evidence, ...], context: RcaContext
    ) -> EvidencePack:
        return build_pack(
            incident,
            evidence,
            self._redactor,
            query=context.query,
            window=str(getattr(context, "window", "") or ""),
            related=context.related,
            timeline=tuple(getattr(context, "timeline", ()) or ()),
            budget_tokens=self.settings.evidence_tokens,
        )

    async def _converse(self, prompt: Prompt, deadline: float) -> _Call:
        models = [self.settings.model_id]
        if self.settings.fallback_model_id:
            models.append(self.settings.fallback_model_id)
        attempts = 0
        for index, model in enumerate(models):
            retries = 0
            while True:
                if self._throttle.expected_wait() > deadline - self._monotonic():
                    raise _Failed("rate_limit", "its request budget (BEDROCK_RPM) is used up")
                if not await self._throttle.acquire(deadline):
                    raise _Failed("rate_limit", "its request budget (BEDROCK_RPM) is used up")
                attempts += 1
                self.stats.requests += 1
                sent = self._monotonic()
                try:
                    args = prompt.converse_args(model, self.settings.max_tokens)
                    response = await asyncio.get_running_loop().run_in_executor(
                        self._threads, partial(self._client.converse, **args)
                    )
                except ClientError as exc:
                    code = str(exc.response.get("Error", {}).get("Code", "")) or "Unknown"
                    self.stats.errors[code] += 1
                    if code != "ValidationException":  # that one is about this request
                        self._unhealthy(f"{model} answered {status_of(exc, code)}")
                    if code in RETRYABLE:
                        if code == "ThrottlingException":
                            self.stats.throttled += 1
                        retries += 1
                        # never sooner than the service asked (Retry-After on a 429 or 503)
                        pause = max(self._backoff(retries), retry_after_of(exc))
                        if self._monotonic() + pause >= deadline:
                            raise _Failed(
                                "throttled", f"still throttled at the deadline ({code})"
                            ) from None
                        self._throttle.pause(pause)
                        continue
                    if code in MODEL_REFUSED and index + 1 < len(models):
                        self.stats.fallback_model += 1
                        log.warning(
                            "Bedrock model %s refused (%s); trying the fallback", model, code
                        )
                        break
                    raise _Failed("error", f"the request was refused ({code})") from None
                except BotoCoreError as exc:
                    name = type(exc).__name__
                    self.stats.errors[name] += 1
                    self._unhealthy(f"the call to {model} failed ({name})")
                    what = (
                        "the endpoint could not be reached"
                        if isinstance(exc, EndpointConnectionError)
                        else "the call failed"
                    )
                    raise _Failed("error", f"{what} ({name})") from None
                wall = (self._monotonic() - sent) * 1000
                self.on_health(Health(HealthStatus.OK, f"{model} answered the last analysis"))
                return _Call(model, response, attempts, wall)
        raise _Failed("error", "no model accepted the request")  # pragma: no cover

    def _unhealthy(self, reason: str) -> None:
        self.on_health(Health(HealthStatus.DOWN, f"the last Bedrock call failed: {reason}"))

    def _backoff(self, retries: int) -> float:
        """Jittered exponential backoff in units of the budget's token interval."""
        ceiling = min(30.0, self._throttle.interval * 2.0**retries)
        return ceiling / 2 + self._rng.random() * ceiling / 2

    # falling back -----------------------------------------------------------------------------

    async def _fall_back(
        self,
        incident: Incident,
        evidence: Sequence[Evidence],
        context: RcaContext,
        meta: dict[str, str],
        failed: _Failed,
    ) -> RcaReport:
        self.stats.fallbacks[failed.kind] += 1
        meta.update(fallback=failed.kind, fallback_reason=str(failed))
        if failed.kind != "rejected":  # a refusal was logged with its reason already
            log.warning("Bedrock analysis of %s fell back: %s", incident.human_id, failed)
        try:
            report = await self._fallback.explain(incident, evidence, context)
        except Exception:
            log.exception("fallback analysis of %s failed too", incident.human_id)
            report = RcaReport(RcaStatus.UNAVAILABLE, "root-cause analysis failed")
        shown = f"the {report.engine} analysis" if report.engine else "another analysis"
        note = f"(Bedrock analysis not used: {failed}; showing {shown}.)"
        meta["engine"] = report.engine
        self._remember(incident.id, meta)
        return _with_meta(replace(report, summary=f"{report.summary} {note}".strip()), meta)

    def _remember(self, incident_id: int, meta: dict[str, str]) -> None:
        self.last_meta[incident_id] = meta
        self.last_meta.move_to_end(incident_id)
        while len(self.last_meta) > CACHE_SIZE:
            self.last_meta.popitem(last=False)


def _with_meta(report: RcaReport, meta: Mapping[str, str]) -> RcaReport:
    """The report carrying its audit metadata, once :class:`RcaReport` has a ``meta`` field."""
    if "meta" in getattr(RcaReport, "__dataclass_fields__", {}):
        return replace(report, meta=dict(meta))  # type: ignore[call-arg]
    return report


__all__ = ["BedrockRcaEngine", "BedrockStats", "make_client"]
