"""The Converse request: instructions in ``system``, the evidence pack fenced as data.

The pack goes between ``<evidence-NONCE>`` and ``</evidence-NONCE>``, where NONCE is random per
request and never occurs in the pack, so no log line can close the fence early; the
instructions say that everything inside is data. The texts are templates next to this module
(``prompt_system.txt``, ``prompt_user.txt``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any

from integrations.bedrock.evidence import EvidencePack

TEMPERATURE = 0.0


@cache
def _template(name: str) -> Template:
    return Template(files(__package__).joinpath(name).read_text(encoding="utf-8"))


def new_nonce() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str
    user: str
    nonce: str

    @property
    def sha256(self) -> str:
        """The digest of exactly what the model is shown (instructions and message)."""
        canonical = json.dumps(
            {"system": self.system, "messages": [self.user]}, ensure_ascii=False, sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def converse_args(self, model_id: str, max_tokens: int) -> dict[str, Any]:
        """Keyword arguments of ``bedrock-runtime`` ``converse``."""
        return {
            "modelId": model_id,
            "system": [{"text": self.system}],
            "messages": [{"role": "user", "content": [{"text": self.user}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": TEMPERATURE},
        }


def playbook_choices(playbooks: Sequence[str]) -> str:
    if not playbooks:
        return "none are available, so always null"
    return ", ".join(json.dumps(name) for name in sorted(set(playbooks)))


def build_prompt(
    pack: EvidencePack,
    incident: str,
    playbooks: Sequence[str] = (),
    nonce: Callable[[], str] = new_nonce,
) -> Prompt:
    """The prompt for ``pack`` of ``incident`` (its human id)."""
    fence = nonce()
    while not fence or fence in pack.text or fence in incident:
        fence = new_nonce()
    system = _template("prompt_system.txt").substitute(
        nonce=fence, playbooks=playbook_choices(playbooks)
    )
    user = _template("prompt_user.txt").substitute(nonce=fence, incident=incident, pack=pack.text)
    return Prompt(system=system.strip(), user=user.strip(), nonce=fence)


__all__ = ["TEMPERATURE", "Prompt", "build_prompt", "new_nonce", "playbook_choices"]
