"""Parameter estimates from config shapes match published model sizes."""

from __future__ import annotations

from typing import Any

import pytest
from tests.harness import zoo

from specdeploy.validate.modelconfig import from_hf_config, from_params
from specdeploy.validate.sizing import estimate_parameters, kv_cache_bytes_per_gpu

MIXTRAL_8X7B = {**zoo.MISTRAL_7B_V01, "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 2}


@pytest.mark.parametrize(
    ("config", "published"),
    [
        (zoo.LLAMA_31_8B_INSTRUCT, 8_030_261_248),
        (zoo.LLAMA_31_70B_INSTRUCT, 70_553_706_496),
        (zoo.LLAMA_32_1B_INSTRUCT, 1_235_814_400),  # tied embeddings
        (zoo.MISTRAL_7B_V01, 7_241_732_096),
        (MIXTRAL_8X7B, 46_702_792_704),
    ],
)
def test_dense_and_moe_counts_match_published(config: dict[str, Any], published: int) -> None:
    estimate = estimate_parameters(from_hf_config(config))
    assert estimate is not None
    assert estimate.total == pytest.approx(published, rel=0.001)


def test_deepseek_v3_mla_moe_total_and_active() -> None:
    estimate = estimate_parameters(from_hf_config(zoo.DEEPSEEK_V3))
    assert estimate is not None
    assert estimate.total == pytest.approx(671e9, rel=0.01)  # published: 671B total
    assert estimate.active == pytest.approx(37e9, rel=0.03)  # published: 37B activated per token


def test_mixtral_active_parameters() -> None:
    estimate = estimate_parameters(from_hf_config(MIXTRAL_8X7B))
    assert estimate is not None
    assert estimate.active == pytest.approx(12.9e9, rel=0.01)  # published: 12.9B active


def test_llama_native_params_json_derives_the_mlp_width() -> None:
    params = {
        "dim": 4096,
        "ffn_dim_multiplier": 1.3,
        "multiple_of": 1024,
        "n_heads": 32,
        "n_kv_heads": 8,
        "n_layers": 32,
        "norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "use_scaled_rope": True,
        "vocab_size": 128256,
    }
    cfg = from_params(params)
    assert cfg.intermediate_size == 14336
    estimate = estimate_parameters(cfg)
    assert estimate is not None and estimate.total == 8_030_261_248


def test_context_length_follows_vllm_rope_rules() -> None:
    assert from_hf_config(zoo.LLAMA_31_8B).max_len == 131072  # llama3 rope: max_position_embeddings as is
    assert from_hf_config(zoo.DEEPSEEK_V3).max_len == 4096 * 40  # yarn: original * factor
    linear = {**zoo.MISTRAL_7B_V01, "rope_scaling": {"type": "linear", "factor": 2.0}}
    assert from_hf_config(linear).max_len == 65536


def test_kv_cache_splits_kv_heads_and_replicates_below_one_per_gpu() -> None:
    cfg = from_hf_config(zoo.LLAMA_31_70B_INSTRUCT)
    per_token_all = 2 * 80 * 8 * 128 * 2
    assert kv_cache_bytes_per_gpu(cfg, 1000, 1) == per_token_all * 1000
    assert kv_cache_bytes_per_gpu(cfg, 1000, 4) == per_token_all * 1000 // 4
    assert kv_cache_bytes_per_gpu(cfg, 1000, 16) == per_token_all * 1000 // 8  # one replicated KV head per GPU


def test_bad_config_value_names_the_key() -> None:
    from specdeploy.validate.errors import CheckError

    with pytest.raises(CheckError) as err:
        from_hf_config({**zoo.LLAMA_31_8B, "num_attention_heads": "thirty-two"})
    assert "num_attention_heads" in err.value.message
