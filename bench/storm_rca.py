"""Root causes in a storm: 1,000 incidents from 10 rules, Bedrock fake at 40 requests a minute.

Prints one JSON line: how long until every incident had its report, Bedrock calls made, the
most calls in any rolling 60 s, and how many reports were shared from a group's leader.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the project root on sys.path)

from bot.domain.hits import Evidence
from bot.domain.rca import RcaStatus
from bot.ports import RcaContext
from bot.redaction import Redactor
from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings
from integrations.heuristic import HeuristicRcaEngine
from tests.fakes.bedrock import FakeBedrock, evidence, incident

RULES, INCIDENTS, RPM, WORKERS = 10, 1000, 40, 4
MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


def lines_of(rule: int, member: int) -> list[Evidence]:
    host = f"node{member:04d}"
    return evidence(
        [
            f"2026-11-22T10:00:{s:02d}Z host={host} service=shop-{rule} level=error "
            f'msg="cause {rule}: dependency refused" attempt={member + s}'
            for s in range(3)
        ]
    )


async def main() -> None:
    with FakeBedrock(quota=RPM, window=60.0) as fake:
        os.environ["BEDROCK_ENDPOINT_URL"] = fake.url
        engine = BedrockRcaEngine(
            load_bedrock_settings(model_id=MODEL, rpm=RPM),
            HeuristicRcaEngine(),
            Redactor("balanced"),
        )
        workers = asyncio.Semaphore(WORKERS)

        async def one(n: int) -> bool:
            rule, member = n % RULES, n // RULES
            found = incident(
                n + 1, rule=f"rule-{rule}", service=f"shop-{rule}", host=f"node{member:04d}"
            )
            async with workers:
                report = await engine.explain(found, lines_of(rule, member), RcaContext())
            return report.status is RcaStatus.OK

        started = time.monotonic()
        ok = await asyncio.gather(*(one(n) for n in range(INCIDENTS)))
        took = time.monotonic() - started
        starts = sorted(t for t, _, _ in fake.log)
        rolling = max((sum(1 for u in starts if t <= u < t + 60) for t in starts), default=0)
        engine.close()
    print(
        json.dumps(
            {
                "bench": "storm_rca",
                "incidents": INCIDENTS,
                "rules": RULES,
                "rca_all_s": round(took, 1),
                "ok": sum(ok),
                "bedrock_calls": len(fake.log),
                "bedrock_rpm_max": rolling,
                "shared": engine.stats.shared,
            }
        )
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(Path(folder) / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(Path(folder) / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            os.environ[name] = value
        asyncio.run(main())
