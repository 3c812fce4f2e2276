"""The vLLM command line: every flag is a real vLLM 0.32 option, values are separate items, the config is right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specdeploy.api.rules import RESERVED_FLAGS, TRUST_REMOTE_CODE_FLAG
from specdeploy.render.vllm_args import VLLM_COMMAND, speculative_config, vllm_args

from .specs import flags_with_values, make_spec, vllm_options


def full_spec_args() -> list[str]:
    spec = make_spec(
        target={
            "revision": "main",
            "tensorParallelSize": 4,
            "maxModelLen": 8192,
            "dtype": "bfloat16",
            "quantization": "awq",
        },
        draft={"revision": "v2", "tensorParallelSize": 4, "quantization": "fp8"},
        speculation={"numSpeculativeTokens": 5},
        serving={
            "servedModelName": "coder",
            "port": 8080,
            "gpuMemoryUtilization": 0.85,
            "extraArgs": ["--max-num-seqs", "32"],
        },
    )
    return vllm_args(spec)


def test_command_is_vllm_serve_with_the_model_as_its_positional_argument() -> None:
    # `python3 -m vllm.entrypoints.openai.api_server` is deprecated since vLLM 0.29; `vllm serve` takes the model
    # first (vLLM warns about --model there). A model id never starts with "-", so it cannot be read as a flag.
    assert VLLM_COMMAND == ("vllm", "serve")
    args = full_spec_args()
    assert args[0] == "org/target"
    assert "--model" not in args


def test_every_flag_exists_in_vllm_serve_options() -> None:
    args = full_spec_args()
    parsed = dict(flags_with_values(args[1:]))
    assert parsed["--revision"] == "main"
    assert parsed["--tensor-parallel-size"] == "4"
    assert parsed["--max-model-len"] == "8192"
    assert parsed["--dtype"] == "bfloat16"
    assert parsed["--quantization"] == "awq"
    assert parsed["--served-model-name"] == "coder"
    assert parsed["--host"] == "0.0.0.0"
    assert parsed["--port"] == "8080"
    assert parsed["--gpu-memory-utilization"] == "0.85"
    assert parsed["--max-num-seqs"] == "32"
    assert "--speculative-config" in parsed


def test_every_dtype_the_api_allows_is_a_vllm_choice() -> None:
    choices = vllm_options()["--dtype"]["choices"]
    for dtype in ("auto", "float16", "bfloat16", "float32"):
        assert dtype in choices
        assert dict(flags_with_values(vllm_args(make_spec(target={"dtype": dtype}))[1:]))["--dtype"] == dtype


def test_every_flag_the_operator_protects_is_a_real_option() -> None:
    options = vllm_options()
    assert [flag for flag in (*RESERVED_FLAGS, TRUST_REMOTE_CODE_FLAG) if flag not in options] == []


def test_minimal_spec_uses_defaults_and_the_model_as_served_name() -> None:
    args = vllm_args(make_spec())
    parsed = dict(flags_with_values(args[1:]))
    assert parsed["--served-model-name"] == "org/target"
    assert parsed["--port"] == "8000"
    assert parsed["--tensor-parallel-size"] == "1"
    assert "--revision" not in parsed
    assert "--max-model-len" not in parsed
    assert "--gpu-memory-utilization" not in parsed


def test_values_are_single_argv_items_never_shell_text() -> None:
    args = full_spec_args()
    assert all(isinstance(a, str) for a in args)
    config = args[args.index("--speculative-config") + 1]
    assert " " not in config  # compact JSON: one item, nothing for a shell to split
    assert args[-2:] == ["--max-num-seqs", "32"]  # extraArgs come last, unchanged


def spec_config(**sections: object) -> dict[str, object]:
    args = vllm_args(make_spec(**sections))
    config: dict[str, object] = json.loads(args[args.index("--speculative-config") + 1])
    return config


def test_speculative_config_for_a_draft_model() -> None:
    assert spec_config() == {"method": "draft_model", "model": "org/draft", "num_speculative_tokens": 4}
    full = spec_config(
        target={"tensorParallelSize": 2},
        draft={"tensorParallelSize": 2, "revision": "abc123", "quantization": "fp8"},
        speculation={"numSpeculativeTokens": 7},
    )
    assert full == {
        "method": "draft_model",
        "model": "org/draft",
        "num_speculative_tokens": 7,
        "draft_tensor_parallel_size": 2,
        "revision": "abc123",
        "quantization": "fp8",
    }


def test_heterogeneous_vocab_asks_vllm_to_map_the_vocabularies() -> None:
    assert spec_config(speculation={"heterogeneousVocab": True}) == {
        "method": "draft_model",
        "model": "org/draft",
        "num_speculative_tokens": 4,
        "use_heterogeneous_vocab": True,
    }
    # Off (the default, or written out): the key is absent and vLLM keeps its equal-vocabulary check.
    assert "use_heterogeneous_vocab" not in spec_config(speculation={"heterogeneousVocab": False})
    assert "use_heterogeneous_vocab" not in spec_config()


def test_batch_size_schedule_is_rendered_in_vllms_own_spelling() -> None:
    schedule = [{"start": 1, "end": 1, "tokens": 4}, {"start": 2, "end": 256, "tokens": 0}]
    config = spec_config(speculation={"numSpeculativeTokensPerBatchSize": schedule})
    assert config["num_speculative_tokens_per_batch_size"] == [[1, 1, 4], [2, 256, 0]]
    assert config["num_speculative_tokens"] == 4  # vLLM's maximum depth stays the spec's k
    # The control group and the adaptive settings are not vLLM's business.
    plain = spec_config(speculation={"control": {"replicas": 2}, "adaptive": {"enabled": True}})
    assert plain == spec_config()


def test_every_schedule_the_api_accepts_vllm_accepts_and_the_lookup_matches() -> None:
    """The API's rules against vLLM 0.32's own validator (copied verbatim below from vllm/v1/spec_decode/dynamic)."""
    from specdeploy.api.payoff import BatchSizeRange, check_schedule, depth_at

    cases = [
        [(1, 1, 4), (2, 256, 0)],
        [(1, 4, 5), (5, 16, 2), (17, 256, 0)],
        [(1, 16, 3), (32, 128, 2)],  # a gap carries 3 forward
        [(1, 8, 2)],  # the tail carries 2 forward
    ]
    for entries in cases:
        schedule = [BatchSizeRange(start=s, end=e, tokens=t) for s, e, t in entries]
        check_schedule(schedule, k=5)
        dense = _vllm_dense_lookup([list(e) for e in entries], max_batch=300, k=5)
        assert [depth_at(schedule, b, 5) for b in range(1, 301)] == dense[1:], entries


def _vllm_dense_lookup(schedule: list[list[int]], max_batch: int, k: int) -> list[int]:
    """vLLM 0.32 build_dynamic_sd_schedule_lookup, reduced to the valid-input path (same carry-forward rules)."""
    parsed = sorted((int(s), int(e), int(t)) for s, e, t in schedule)
    dense = [0] * (max_batch + 1)
    next_batch, last = 1, None
    for start, end, tokens in parsed:
        if start > next_batch and last is not None:
            for b in range(next_batch, min(start, max_batch + 1)):
                dense[b] = min(k, last)
        for b in range(max(start, next_batch), min(end, max_batch) + 1):
            dense[b] = min(k, tokens)
        next_batch, last = max(next_batch, end + 1), tokens
        if next_batch > max_batch:
            break
    assert last is not None
    for b in range(next_batch, max_batch + 1):
        dense[b] = min(k, last)
    return dense


@pytest.mark.parametrize("method", ["eagle", "eagle3", "medusa", "mlp_speculator"])
def test_speculative_config_for_head_methods_names_method_and_heads(method: str) -> None:
    assert spec_config(speculation={"method": method, "numSpeculativeTokens": 3}) == {
        "method": method,
        "model": "org/draft",
        "num_speculative_tokens": 3,
    }


def test_speculative_config_for_ngram_has_no_model_and_the_lookup_window() -> None:
    config = spec_config(draft=None, speculation={"method": "ngram", "promptLookupMax": 4, "promptLookupMin": 2})
    assert config == {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4, "prompt_lookup_min": 2}
    assert spec_config(draft=None, speculation={"method": "ngram"}) == {"method": "ngram", "num_speculative_tokens": 4}


def test_speculative_config_for_mtp_without_a_draft_uses_the_targets_layers() -> None:
    assert spec_config(draft=None, speculation={"method": "mtp", "numSpeculativeTokens": 1}) == {
        "method": "mtp",
        "num_speculative_tokens": 1,
    }


def test_mtp_without_a_draft_loads_the_layers_of_the_targets_revision() -> None:
    # vLLM builds the MTP draft config from the target's model id but with the speculative config's own revision:
    # without it, a pinned target would draft with the MTP layers of the repo's main branch.
    config = spec_config(draft=None, target={"revision": "a1b2c3d"}, speculation={"method": "mtp"})
    assert config == {"method": "mtp", "num_speculative_tokens": 1, "revision": "a1b2c3d"}
    args = vllm_args(make_spec(draft=None, target={"revision": "a1b2c3d"}, speculation={"method": "mtp"}))
    assert dict(flags_with_values(args[1:]))["--revision"] == "a1b2c3d"
    # A separate MTP checkpoint keeps its own revision; other methods never get the target's.
    separate = spec_config(
        draft={"model": "org/mtp", "revision": "d1"}, target={"revision": "t1"}, speculation={"method": "mtp"}
    )
    assert separate["revision"] == "d1"
    assert "revision" not in spec_config(draft=None, target={"revision": "t1"}, speculation={"method": "ngram"})


def test_mtp_defaults_to_one_token_per_step_as_vllm_advises() -> None:
    # vLLM warns that k > 1 reruns the same (single) MTP layer and lowers the acceptance rate.
    assert spec_config(draft=None, speculation={"method": "mtp"})["num_speculative_tokens"] == 1
    assert (
        spec_config(draft=None, speculation={"method": "mtp", "numSpeculativeTokens": 3})["num_speculative_tokens"] == 3
    )
    assert spec_config()["num_speculative_tokens"] == 4


def test_ngram_lookup_window_is_left_to_vllm_when_unset_or_half_set() -> None:
    # vLLM uses 5 for both when neither is set and copies one to the other when only one is: the operator must not
    # write a default of its own (a rendered max of 5 with a user's min of 7 would be refused by vLLM).
    assert "prompt_lookup_min" not in spec_config(draft=None, speculation={"method": "ngram", "promptLookupMax": 3})
    only_min = spec_config(draft=None, speculation={"method": "ngram", "promptLookupMin": 7})
    assert only_min == {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_min": 7}


def test_changing_k_changes_only_the_speculative_config() -> None:
    a = vllm_args(make_spec(speculation={"numSpeculativeTokens": 2}))
    b = vllm_args(make_spec(speculation={"numSpeculativeTokens": 6}))
    assert [x for x, y in zip(a, b, strict=True) if x != y] == [a[a.index("--speculative-config") + 1]]


def test_disabled_speculation_serves_the_target_alone() -> None:
    spec = make_spec(serving={"extraArgs": ["--enable-prefix-caching"]})
    args = vllm_args(spec, speculation_enabled=False)
    assert "--speculative-config" not in args
    assert "org/draft" not in " ".join(args)
    assert args[0] == "org/target"
    assert args[-1] == "--enable-prefix-caching"
    assert speculative_config(spec)["model"] == "org/draft"  # the config itself is unchanged


VLLM_SPECULATIVE = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures/vllm/vllm-0.32-speculative-config.json").read_text()
)


def test_speculative_config_for_suffix_has_no_model_and_only_the_knobs_set() -> None:
    knobs = {
        "suffixDecodingMaxTreeDepth": 32,
        "suffixDecodingMaxCachedRequests": 0,
        "suffixDecodingMaxSpecFactor": 2.5,
        "suffixDecodingMinTokenProb": 0.25,
    }
    assert spec_config(draft=None, speculation={"method": "suffix", **knobs}) == {
        "method": "suffix",
        "num_speculative_tokens": 4,
        "suffix_decoding_max_tree_depth": 32,
        "suffix_decoding_max_cached_requests": 0,
        "suffix_decoding_max_spec_factor": 2.5,
        "suffix_decoding_min_token_prob": 0.25,
    }
    assert spec_config(draft=None, speculation={"method": "suffix", "suffixDecodingMinTokenProb": 0.5}) == {
        "method": "suffix",
        "num_speculative_tokens": 4,
        "suffix_decoding_min_token_prob": 0.5,
    }


def test_speculative_config_for_ngram_gpu_keeps_the_lookup_window() -> None:
    config = spec_config(draft=None, speculation={"method": "ngram_gpu", "promptLookupMax": 3})
    assert config == {"method": "ngram_gpu", "num_speculative_tokens": 4, "prompt_lookup_max": 3}


@pytest.mark.parametrize(
    "speculation",
    [
        {"method": "ngram", "promptLookupMax": 4, "promptLookupMin": 2},
        {"method": "ngram_gpu", "promptLookupMin": 2},
        {
            "method": "suffix",
            "suffixDecodingMaxTreeDepth": 1,
            "suffixDecodingMaxCachedRequests": 0,
            "suffixDecodingMaxSpecFactor": 0,
            "suffixDecodingMinTokenProb": 1,
        },
    ],
    ids=["ngram", "ngram_gpu", "suffix"],
)
def test_model_free_configs_use_only_vllms_own_methods_keys_and_bounds(speculation: dict[str, object]) -> None:
    config = spec_config(draft=None, speculation=speculation)
    assert config["method"] in VLLM_SPECULATIVE["methods"]
    fields = VLLM_SPECULATIVE["fields"]
    assert [key for key in config if key not in fields] == []
    for key, value in config.items():
        bounds = fields[key]
        if "minimum" in bounds:
            assert value >= bounds["minimum"], key  # type: ignore[operator]
        if "maximum" in bounds:
            assert value <= bounds["maximum"], key  # type: ignore[operator]
