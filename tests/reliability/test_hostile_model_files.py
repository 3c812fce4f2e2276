"""Malformed and huge tokenizer/config files: the validator exits 2 with a message naming the file, quickly and in
bounded memory, never with a traceback, a hang or an out-of-memory kill.

Each case is a real model folder (Mistral 7B v0.1's config and SentencePiece tokenizer from mistral-common) with
one file of the draft replaced, run through ``python -m specdeploy.validate`` as the validation Job runs it. The
child's wall time and peak RSS (VmHWM) are printed; an address-space limit keeps a regression from taking
the test machine down with it.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from specdeploy.validate.vocab import MAX_VOCAB_IDS
from tests.harness import zoo

pytestmark = pytest.mark.serial  # asserts on time and memory: run alone

MIB = 1024 * 1024
ADDRESS_SPACE_LIMIT = 4 * 1024 * MIB
SECONDS_LIMIT = 10.0
RSS_LIMIT_MIB = 512.0


@dataclass(frozen=True)
class Run:
    code: int
    report: dict[str, Any]
    seconds: float
    rss_mib: float
    stderr: str


# The validator's own entry point under an address-space limit (set inside the child, before any import). Its peak
# RSS is read from /proc/self/status (VmHWM) at exit: ru_maxrss of a child of pytest would report pytest's own size
# for any child smaller than that, because Linux carries the parent's high-water mark across fork and exec.
LIMITED_VALIDATOR = """
import atexit, resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
def peak():
    with open("/proc/self/status") as status, open({hwm!r}, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
sys.argv[0] = "specdeploy.validate"
runpy.run_module("specdeploy.validate", run_name="__main__", alter_sys=True)
"""


def run_validator(target: Path, draft: Path, timeout: float = 120) -> Run:
    out_path, err_path = draft.parent / f"{draft.name}.out", draft.parent / f"{draft.name}.err"
    hwm_path = draft.parent / f"{draft.name}.hwm"
    code = LIMITED_VALIDATOR.format(limit=ADDRESS_SPACE_LIMIT, hwm=str(hwm_path))
    argv = [sys.executable, "-c", code, "--target", str(target), "--draft", str(draft), "--output", "json"]
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the validator ran past {timeout:.0f} s on {draft.name}") from None
    seconds = time.monotonic() - started
    text = out_path.read_text()
    return Run(
        code=proc.returncode,
        report=json.loads(text) if text.strip() else {},
        seconds=seconds,
        rss_mib=int(hwm_path.read_text()) / 1024 if hwm_path.exists() else float("nan"),
        stderr=err_path.read_text(),
    )


def sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)

    return make


def noise(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(size))


def config_with(**fields: Any) -> bytes:
    return json.dumps({**zoo.MISTRAL_7B_V01, **fields}).encode()


def tokenizer_json(vocab: dict[str, int]) -> bytes:
    return json.dumps(
        {
            "version": "1.0",
            "added_tokens": [],
            "normalizer": None,
            "pre_tokenizer": None,
            "post_processor": None,
            "decoder": None,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": next(iter(vocab))},
        }
    ).encode()


# name -> (files replaced in the draft folder, the file the message must name, words it must contain)
CASES: dict[str, tuple[dict[str, bytes | Callable[[Path], None]], str, str]] = {
    "200 MB tokenizer.json": ({"tokenizer.json": sparse(200 * MIB)}, "tokenizer.json", "MiB"),
    "2 MB config.json": ({"config.json": sparse(2 * MIB)}, "config.json", "MiB"),
    "deeply nested config.json": ({"config.json": b"[" * 200_000 + b"]" * 200_000}, "config.json", "deeply"),
    "deeply nested tokenizer_config.json": (
        {"tokenizer_config.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000},
        "tokenizer_config.json",
        "deeply",
    ),
    "deeply nested tokenizer.json": (
        {"tokenizer.json": b'{"model":' + b"[" * 100_000 + b"]" * 100_000 + b"}"},
        "tokenizer.json",
        "cannot be loaded",
    ),
    "binary garbage config.json": ({"config.json": noise(4096, 1)}, "config.json", "not"),
    "JSON array as config.json": ({"config.json": b"[1, 2, 3]"}, "config.json", "JSON object"),
    "tokenizer.model not SentencePiece": ({"tokenizer.model": noise(100_000, 2)}, "tokenizer.model", "SentencePiece"),
    "token id 4,000,000,000 in tokenizer.json": (
        {"tokenizer.json": tokenizer_json({"a": 0, "b": 4_000_000_000})},
        "tokenizer.json",
        "4,000,000,000",
    ),
    "added token id 10**11": (
        {"tokenizer_config.json": json.dumps({"added_tokens_decoder": {str(10**11): {"content": "x"}}}).encode()},
        "tokenizer_config.json",
        "100,000,000,000",
    ),
    "tiktoken rank 10**12": ({"tokenizer.model": b"YQ== 0\nYg== 1000000000000\n"}, "tokenizer.model", "rank"),
    "10**30 layers in config.json": ({"config.json": config_with(num_hidden_layers=10**30)}, "config.json", "2**53"),
    "Infinity hidden_size": ({"config.json": config_with(hidden_size=float("inf"))}, "config.json", "hidden_size"),
    "NaN vocab_size": ({"config.json": config_with(vocab_size=float("nan"))}, "config.json", "vocab_size"),
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zoo.mistral(tmp_path_factory.mktemp("models") / "target", zoo.MISTRAL_7B_V01, tokenizer="spm-v1")


def draft_with(target: Path, name: str, files: dict[str, bytes | Callable[[Path], None]]) -> Path:
    folder = target.parent / name.replace(" ", "_").replace("*", "")
    shutil.copytree(target, folder)
    for file, content in files.items():
        if callable(content):
            content(folder / file)
        else:
            (folder / file).write_bytes(content)
    return folder


def test_hostile_files_exit_2_naming_the_file_in_bounded_time_and_memory(target: Path) -> None:
    baseline = run_validator(target, draft_with(target, "baseline", {}))
    assert baseline.code == 0, baseline.report
    print(f"\n  {'baseline (valid pair)':<42} exit 0  {baseline.seconds:5.2f} s  {baseline.rss_mib:5.0f} MiB")
    problems = []
    for name, (files, file, words) in CASES.items():
        result = run_validator(target, draft_with(target, name, files))
        error = result.report.get("error") or {}
        message = str(error.get("message", ""))
        print(f"  {name:<42} exit {result.code}  {result.seconds:5.2f} s  {result.rss_mib:5.0f} MiB  {message[:110]}")
        if result.code != 2 or error.get("kind") not in ("malformed", "oversized"):
            problems.append(f"{name}: exit {result.code}, error {error or result.stderr[-500:]}")
        elif file not in message or words not in message or error.get("source") != "draft":
            problems.append(f"{name}: message does not name the draft's {file} ({words!r}): {message}")
        if "Traceback" in result.stderr:
            problems.append(f"{name}: traceback on stderr")
        if result.seconds > SECONDS_LIMIT or result.rss_mib > RSS_LIMIT_MIB:
            problems.append(f"{name}: {result.seconds:.1f} s, {result.rss_mib:.0f} MiB")
    assert not problems, "\n".join(problems)


def test_the_largest_vocabulary_accepted_costs_bounded_time_and_memory(target: Path) -> None:
    """A tokenizer.json at the id limit (2**20 ids) loads and is compared, within a bounded cost."""
    vocab = {f"t{i}": i for i in range(MAX_VOCAB_IDS)}
    result = run_validator(target, draft_with(target, "largest vocabulary", {"tokenizer.json": tokenizer_json(vocab)}))
    print(f"\n  {MAX_VOCAB_IDS:,} ids: exit {result.code}, {result.seconds:.1f} s, {result.rss_mib:.0f} MiB")
    assert result.code == 1, result.report  # loads, then is (rightly) incompatible with Mistral's 32,000 ids
    assert "vocabulary" in result.report.get("summary", "")
    assert result.seconds < 60 and result.rss_mib < 1024
