"""Fixtures for the validator tests: real-tokenizer model folders (built once per session) and a runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.harness import zoo

from specdeploy.validate.checks import Options
from specdeploy.validate.engine import Outcome, Request, validate


class Folders:
    """Lazily built model folders, shared by all tests of the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, Path] = {}

    def get(self, name: str, build: Callable[[Path], Path]) -> Path:
        if name not in self._built:
            self._built[name] = build(self.root / name)
        return self._built[name]

    @property
    def llama31_70b_instruct(self) -> Path:
        return self.get("llama31-70b-instruct", lambda p: zoo.llama(p, zoo.LLAMA_31_70B_INSTRUCT, eos="<|eot_id|>"))

    @property
    def llama31_70b_instruct_json(self) -> Path:
        return self.get(
            "llama31-70b-instruct-json",
            lambda p: zoo.llama(p, zoo.LLAMA_31_70B_INSTRUCT, eos="<|eot_id|>", tokenizer="llama3-json"),
        )

    @property
    def llama31_8b_instruct(self) -> Path:
        return self.get("llama31-8b-instruct", lambda p: zoo.llama(p, zoo.LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>"))

    @property
    def llama31_8b_base(self) -> Path:
        return self.get("llama31-8b", lambda p: zoo.llama(p, zoo.LLAMA_31_8B, eos="<|end_of_text|>"))

    @property
    def llama32_1b_instruct(self) -> Path:
        return self.get("llama32-1b-instruct", lambda p: zoo.llama(p, zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>"))

    @property
    def llama30_8b_instruct(self) -> Path:
        def build(p: Path) -> Path:
            return zoo.write_model(
                p,
                zoo.LLAMA_3_8B_INSTRUCT,
                tokenizer="llama3-tiktoken",
                tokenizer_config=zoo.llama3_tokenizer_config("<|eot_id|>", zoo.llama30_specials()),
                generation_config=zoo.generation([128001, 128009]),
            )

        return self.get("llama30-8b-instruct", build)

    @property
    def mistral_v01(self) -> Path:
        return self.get("mistral-7b-v0.1", lambda p: zoo.mistral(p, zoo.MISTRAL_7B_V01, tokenizer="spm-v1"))

    @property
    def mistral_v03(self) -> Path:
        return self.get("mistral-7b-v0.3", lambda p: zoo.mistral(p, zoo.MISTRAL_7B_V03, tokenizer="spm-v3"))

    @property
    def eagle_llama3_8b(self) -> Path:
        return self.get("eagle-llama3-8b", lambda p: zoo.write_model(p, zoo.EAGLE_LLAMA3_INSTRUCT_8B))

    @property
    def deepseek_v3(self) -> Path:
        return self.get(
            "deepseek-v3",
            lambda p: zoo.write_model(p, zoo.DEEPSEEK_V3, generation_config={"bos_token_id": 0, "eos_token_id": 1}),
        )


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Folders:
    return Folders(tmp_path_factory.mktemp("models"))


Run = Callable[..., Outcome]


@pytest.fixture
def run() -> Run:
    """Validate local folders in-process: ``run(target, draft, method=..., tensor_parallel=..., ...)``."""

    def _run(target: Path | str, draft: Path | str | None, **options: Any) -> Outcome:
        return validate(
            Request(
                target=str(target),
                draft=str(draft) if draft is not None else None,
                options=Options(**options),
                timeout_s=120,
            )
        )

    return _run


def check(outcome: Outcome, name: str) -> dict[str, Any]:
    """The check called ``name`` in an outcome's report."""
    matches: list[dict[str, Any]] = [c for c in outcome.report["checks"] if c["name"] == name]
    assert len(matches) == 1, outcome.report
    return matches[0]


def statuses(outcome: Outcome) -> dict[str, str]:
    return {c["name"]: c["status"] for c in outcome.report["checks"]}
