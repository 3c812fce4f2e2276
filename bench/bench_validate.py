"""Validator benchmarks (not tests): 128k-vocabulary comparison time, and bytes fetched for a 70B/8B pair.

Budgets (design.md section 5): two 128k vocabularies compared in under 1 s; only metadata is downloaded
(kilobytes to a few MB, never weights). Prints medians of several runs and ratios against a baseline measured in
the same run: tiktoken's own file loader, and a straightforward dict-based comparison.

    .venv/bin/python bench/bench_validate.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import zoo  # noqa: E402
from tests.harness.fakehub import FakeHub, llama_repo_listing, serve  # noqa: E402

from specdeploy.validate.formats import hf_library, load_vocabulary  # noqa: E402
from specdeploy.validate.vocab import Vocabulary  # noqa: E402
from specdeploy.validate.vocabdiff import compare_vocabularies, vocabulary_overlap  # noqa: E402


def median_s(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def perturbed(vocab: Vocabulary, every: int = 100) -> Vocabulary:
    """A copy with every ``every``-th token changed (1% of 128k ids for the default)."""
    tokens = list(vocab.tokens)
    for i in range(0, len(tokens), every):
        tokens[i] = b"perturbed-" + str(i).encode()
    return Vocabulary(format=vocab.format, file=vocab.file, tokens=tuple(tokens), special_ids=vocab.special_ids)


def naive_compare(a: Vocabulary, b: Vocabulary) -> int:
    """Baseline: token -> id maps compared key by key, as a first implementation would."""
    a_map = {tok: i for i, tok in enumerate(a.tokens) if tok is not None}
    b_map = {tok: i for i, tok in enumerate(b.tokens) if tok is not None}
    diffs = {t for t in a_map if b_map.get(t) != a_map[t]} | {t for t in b_map if a_map.get(t) != b_map[t]}
    return len(diffs)


def bench_vocab(runs: int) -> None:
    import tiktoken.load
    import tokenizers

    print("== 128k vocabulary comparison (Llama 3 tiktoken, 128256 ids) ==")
    path = zoo.LLAMA3_TIKTOKEN
    load = median_s(lambda: load_vocabulary("tokenizer.model", path, None), runs)
    base_load = median_s(lambda: tiktoken.load.load_tiktoken_bpe(str(path)), runs)
    a = load_vocabulary("tokenizer.model", path, None)
    b = load_vocabulary("tokenizer.model", path, None)  # a separate object: equality walks every token
    c = perturbed(a)
    same = median_s(lambda: compare_vocabularies(a, b), runs)
    diff = median_s(lambda: compare_vocabularies(a, c), runs)
    naive = median_s(lambda: naive_compare(a, c), runs)
    overlap = median_s(lambda: vocabulary_overlap(a, c), runs)  # the heterogeneous-vocabulary report
    result = compare_vocabularies(a, c)
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "tokenizer.json"
        json_path.write_text(zoo.llama3_tokenizer_json_text())
        json_load = median_s(lambda: load_vocabulary("tokenizer.json", json_path, None), max(3, runs // 2))
        lib_load = median_s(lambda: tokenizers.Tokenizer.from_file(str(json_path)), max(3, runs // 2))
        lib_vocab = median_s(lambda: hf_library.load(json_path, "tokenizer.json"), max(3, runs // 2))
        same_vocab = load_vocabulary("tokenizer.json", json_path, None) == hf_library.load(json_path, "tokenizer.json")
        mb = json_path.stat().st_size / 1e6
    ms = 1000
    print(f"load tiktoken file (ours)          median {load * ms:8.1f} ms")
    print(f"load tiktoken file (tiktoken lib)  median {base_load * ms:8.1f} ms   ours/baseline {load / base_load:.2f}")
    print(f"load tokenizer.json ({mb:.1f} MB)      median {json_load * ms:8.1f} ms")
    print(
        f"  tokenizers.from_file alone       median {lib_load * ms:8.1f} ms   ours/baseline {json_load / lib_load:.2f}"
    )
    print(
        f"  via tokenizers (previous reader) median {lib_vocab * ms:8.1f} ms   "
        f"ours/baseline {json_load / lib_vocab:.2f}   same Vocabulary: {same_vocab}"
    )
    print(f"compare vs itself                  median {same * 1000:8.1f} ms")
    print(
        f"compare vs perturbed copy          median {diff * 1000:8.1f} ms   ({result.total} ids differ; "
        f"naive dict baseline {naive * 1000:.1f} ms, ratio ours/baseline {diff / naive:.2f})"
    )
    print(
        f"shared tokens vs perturbed copy    median {overlap * ms:8.1f} ms   "
        f"({vocabulary_overlap(a, c).shared} shared; computed only when the vocabularies differ)"
    )
    for label, total in (
        ("two tiktoken loads + compare", 2 * load + diff),
        ("  + shared tokens (once per pair)", 2 * load + diff + overlap),
        ("two tokenizer.json loads + compare", 2 * json_load + diff),
        ("  the same via tokenizers", 2 * lib_vocab + diff),
    ):
        verdict = "OK" if total < 1 else "MISSED"
        print(f"{label:<34} {total * ms:8.1f} ms   goal < 1000 ms: {verdict}")


def bench_bytes() -> None:
    print("\n== bytes fetched for a 70B/8B pair (local Hub on 127.0.0.1, realistic repo listings) ==")
    target, draft = "meta-llama/Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hub = FakeHub()
        for repo, config, shards, shard_bytes, consolidated in (
            (target, zoo.LLAMA_31_70B_INSTRUCT, 30, 4_584_408_808, 8),
            (draft, zoo.LLAMA_31_8B_INSTRUCT, 4, 4_976_698_672, 1),
        ):
            folder = zoo.llama(root / repo.replace("/", "--"), config, eos="<|eot_id|>", tokenizer="llama3-json")
            zoo.write_model(
                folder,
                None,
                extra={
                    "special_tokens_map.json": json.dumps(
                        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
                    ).encode(),
                    "original/params.json": json.dumps({"dim": config["hidden_size"]}).encode(),
                    "original/tokenizer.model": zoo.LLAMA3_TIKTOKEN.read_bytes(),
                },
            )
            hub.add_folder(repo, folder, listed_only=llama_repo_listing(shards, shard_bytes, consolidated))
        listed = sum(sum(len(d) for d in r.files.values()) + sum(r.listed_only.values()) for r in hub.repos.values())
        with serve(hub):
            env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
            env.update(HF_ENDPOINT=hub.url, HF_HOME=str(root / "home"), HF_HUB_CACHE=str(root / "cache"),
                       HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "specdeploy.validate", "--target", target, "--draft", draft,
                 "--tensor-parallel-size", "8", "--output", "json"],
                env=env, capture_output=True, text=True, check=False, cwd=REPO,
            )  # fmt: skip
            wall = time.perf_counter() - start
        report = json.loads(proc.stdout)
        files = sorted(set(hub.file_requests()))
        downloaded = report["target"]["downloaded_bytes"] + report["draft"]["downloaded_bytes"]
        verdict = f"exit code {proc.returncode}, compatible={report['compatible']}"
        print(f"{verdict}, wall {wall:.1f} s (with interpreter start)")
        print(f"files requested: {', '.join(files)}")
        print(f"bytes downloaded (report) {downloaded:,}; file bytes served {hub.file_bytes_served:,}")
        print(f"repository size listed {listed / 1e9:,.1f} GB; fetched fraction {downloaded / listed:.2e}")
        weights = [p for p in files if p.endswith((".safetensors", ".pth", ".bin"))]
        print(f"weight files requested: {len(weights)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    bench_vocab(args.runs)
    bench_bytes()


if __name__ == "__main__":
    main()
