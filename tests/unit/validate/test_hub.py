"""The Hugging Face path against a local Hub on 127.0.0.1: only metadata is requested, the cache works
offline, and network/auth/size failures exit 2 with a message that says what to do.

Each validation runs as a subprocess (like the Job) because huggingface_hub reads HF_* variables at import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness import zoo
from tests.harness.fakehub import FakeHub, llama_repo_listing, serve
from tests.unit.validate.conftest import Folders

TARGET = "meta-llama/Llama-3.1-70B-Instruct"
DRAFT = "meta-llama/Llama-3.1-8B-Instruct"
METADATA = {
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
}
SPECIAL_MAP = json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}).encode()


def _hf_layout(folder: Path, config: dict[str, Any], params: dict[str, Any]) -> Path:
    zoo.llama(folder, config, eos="<|eot_id|>", tokenizer="llama3-json")
    zoo.write_model(
        folder,
        None,
        extra={
            "special_tokens_map.json": SPECIAL_MAP,
            "original/params.json": json.dumps(params).encode(),
            "original/tokenizer.model": zoo.LLAMA3_TIKTOKEN.read_bytes(),
        },
    )
    return folder


@pytest.fixture(scope="module")
def hub_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub")
    return {
        TARGET: _hf_layout(root / "70b", zoo.LLAMA_31_70B_INSTRUCT, {"dim": 8192, "n_layers": 80}),
        DRAFT: _hf_layout(root / "8b", zoo.LLAMA_31_8B_INSTRUCT, {"dim": 4096, "n_layers": 32}),
    }


@pytest.fixture
def hub(hub_layouts: dict[str, Path]) -> Iterator[FakeHub]:
    fake = FakeHub()
    fake.add_folder(TARGET, hub_layouts[TARGET], listed_only=llama_repo_listing(30, 4_584_408_808, 8))
    fake.add_folder(DRAFT, hub_layouts[DRAFT], listed_only=llama_repo_listing(4, 4_976_698_672, 1))
    with serve(fake):
        yield fake


def validate(
    endpoint: str, cache: Path, *args: str, token: str | None = None, offline: bool = False
) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(cache / "home"),
        HF_HUB_CACHE=str(cache / "hub"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    if token:
        env["HF_TOKEN"] = token
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "specdeploy.validate", "--output", "json", *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_fetches_only_metadata_and_counts_bytes(hub: FakeHub, tmp_path: Path) -> None:
    code, report = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT, "--tensor-parallel-size", "8",
                            token="hf_test_token")  # fmt: skip
    assert code == 0, report
    requested = hub.file_requests()
    assert set(requested) == METADATA  # no weights, no index, no original/ duplicates, no README
    assert not any(p.endswith((".safetensors", ".pth", ".bin")) for p in requested)
    fetched = report["target"]["downloaded_bytes"] + report["draft"]["downloaded_bytes"]
    assert fetched == hub.file_bytes_served  # what the validator reports is what crossed the wire
    assert 1_000_000 < fetched < 20_000_000  # megabytes of metadata against ~150 GB of weights listed
    assert report["target"]["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert all(h == "Bearer hf_test_token" for h in hub.auth_headers)


def test_offline_run_uses_the_cache_without_network(hub: FakeHub, tmp_path: Path) -> None:
    code, _ = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT, "--tensor-parallel-size", "8")
    assert code == 0
    before = len(hub.requests)
    code, report = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT, "--tensor-parallel-size", "8",
                            offline=True)  # fmt: skip
    assert code == 0, report
    assert len(hub.requests) == before  # HF_HUB_OFFLINE: not a single request
    assert report["target"]["source"] == "hub-cache"
    assert report["target"]["downloaded_bytes"] == 0
    assert {c["name"]: c["status"] for c in report["checks"]}["token_ids"] == "pass"


def test_unreachable_hub_falls_back_to_the_cache(hub: FakeHub, tmp_path: Path) -> None:
    code, _ = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT, "--tensor-parallel-size", "8")
    assert code == 0
    code, report = validate("http://127.0.0.1:9", tmp_path, "--target", TARGET, "--draft", DRAFT,
                            "--tensor-parallel-size", "8")  # fmt: skip
    assert code == 0, report
    assert report["draft"]["source"] == "hub-cache"


def test_offline_without_cache_says_what_to_do(tmp_path: Path) -> None:
    code, report = validate("http://127.0.0.1:9", tmp_path, "--target", TARGET, "--draft", DRAFT, offline=True)
    assert code == 2
    assert report["error"]["kind"] == "not_found"
    assert "HF_HUB_OFFLINE" in report["error"]["message"]
    assert report["error"]["source"] == "target"


def test_unreachable_hub_without_cache_is_a_network_error(tmp_path: Path) -> None:
    code, report = validate("http://127.0.0.1:9", tmp_path, "--target", TARGET, "--draft", DRAFT)
    assert code == 2
    assert report["error"]["kind"] == "network"


def test_gated_repo_asks_for_token_and_licence(hub: FakeHub, tmp_path: Path) -> None:
    hub.repos[TARGET].gated = True
    code, report = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT)
    assert code == 2
    assert report["error"]["kind"] == "auth"
    assert "HF_TOKEN" in report["error"]["message"] and "licence" in report["error"]["message"]


def test_missing_repo_is_not_found(hub: FakeHub, tmp_path: Path) -> None:
    code, report = validate(hub.url, tmp_path, "--target", TARGET, "--draft", "meta-llama/Llama-9-1B")
    assert code == 2
    assert report["error"] == {
        "kind": "not_found",
        "message": "draft: repository meta-llama/Llama-9-1B does not exist on the Hub (check the spelling)",
        "source": "draft",
    }


def test_oversized_file_is_refused_before_download(hub: FakeHub, tmp_path: Path) -> None:
    repo = hub.repos[DRAFT]
    del repo.files["tokenizer.json"]
    repo.listed_only["tokenizer.json"] = 100 * 1024 * 1024
    code, report = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT)
    assert code == 2
    assert report["error"]["kind"] == "oversized"
    assert "tokenizer.json" in report["error"]["message"]
    assert not any(p.startswith(f"/{DRAFT}/resolve/") and p.endswith("tokenizer.json") for _, p in hub.requests)


def test_stalled_hub_is_bounded_by_the_timeout(hub: FakeHub, tmp_path: Path) -> None:
    hub.repos[TARGET].delay_s = 30
    started = time.monotonic()
    code, report = validate(hub.url, tmp_path, "--target", TARGET, "--draft", DRAFT, "--timeout", "2")
    assert code == 2
    assert report["error"]["kind"] == "timeout"
    assert time.monotonic() - started < 20


def test_native_mistral_layout_reads_params_json(folders: Folders, tmp_path: Path) -> None:
    params = {"dim": 4096, "n_layers": 32, "head_dim": 128, "hidden_dim": 14336, "n_heads": 32, "n_kv_heads": 8,
              "norm_eps": 1e-05, "vocab_size": 32768, "rope_theta": 1000000.0}  # fmt: skip
    native = zoo.write_model(
        tmp_path / "native", None,
        extra={"params.json": json.dumps(params).encode(), "tokenizer.model.v3": zoo.SPM_V3.read_bytes()},
    )  # fmt: skip
    fake = FakeHub()
    fake.add_folder("mistralai/Mistral-7B-v0.3", native, listed_only={"consolidated.safetensors": 14_496_078_512})
    fake.add_folder("mistralai/Mistral-7B-v0.3-hf", folders.mistral_v03)
    with serve(fake):
        code, report = validate(fake.url, tmp_path, "--target", "mistralai/Mistral-7B-v0.3-hf",
                                "--draft", "mistralai/Mistral-7B-v0.3")  # fmt: skip
    assert code == 0, report
    assert set(fake.file_requests()) >= {"params.json", "tokenizer.model.v3"}
    assert "consolidated.safetensors" not in fake.file_requests()
    assert report["draft"]["params"] == 7_248_023_552  # v0.3: 32768-token embeddings
