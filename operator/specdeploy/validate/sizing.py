"""Parameter counts and GPU memory from config shapes alone, so sizing needs no weights.

The estimate counts embeddings (and the LM head unless tied), attention (GQA and MLA), the MLP (gated or not)
and MoE experts (all experts are resident in memory, shared experts and leading dense layers included), plus
norms. It lands within about 1% of published counts for Llama, Mistral and Mixtral. The KV cache for one
sequence is ``2 * layers * kv_heads * head_dim * bytes * tokens`` (MLA caches one latent per token instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from specdeploy.validate.modelconfig import ModelConfig

GiB = 1024**3


@dataclass(frozen=True)
class ParameterEstimate:
    """Estimated parameters: the total resident in memory and the part active per token (MoE)."""

    total: int
    active: int


def estimate_parameters(cfg: ModelConfig, *, layers: int | None = None) -> ParameterEstimate | None:
    """Estimate the parameter count from shapes; None when the config lacks the shapes needed."""
    hidden, n_layers, heads = cfg.hidden_size, layers if layers is not None else cfg.num_layers, cfg.num_heads
    if not hidden or n_layers is None or not heads:
        return None
    head_dim = cfg.head_dim or hidden // heads
    kv_heads = cfg.num_kv_heads or heads
    vocab = cfg.vocab_size or 0
    embeddings = vocab * hidden * (1 if cfg.tie_word_embeddings else 2)
    attention = _attention(cfg, hidden, heads, kv_heads, head_dim)
    norms = 2 * hidden
    ffn = cfg.intermediate_size or 4 * hidden
    dense_mlp = (3 if cfg.gated_mlp else 2) * hidden * ffn
    moe = cfg.moe
    # Whole layers at a time (not a loop over layers): a config claiming 10**30 layers costs no more than 32.
    dense_layers = n_layers if moe is None else min(n_layers, max(0, moe.dense_layers))
    moe_layers = n_layers - dense_layers
    total = embeddings + hidden + n_layers * (attention + norms) + dense_layers * dense_mlp
    active = total
    if moe is not None and moe_layers:
        expert = 3 * hidden * moe.expert_intermediate
        shared = 3 * hidden * moe.shared_intermediate * moe.shared_experts
        router = hidden * moe.experts
        total += moe_layers * (moe.experts * expert + shared + router)
        active += moe_layers * (moe.per_token * expert + shared + router)
    return ParameterEstimate(total=total, active=active)


def _attention(cfg: ModelConfig, hidden: int, heads: int, kv_heads: int, head_dim: int) -> int:
    mla = cfg.mla
    if mla is None:
        return hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if mla.q_lora_rank:
        q = hidden * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * heads * qk_head
    else:
        q = hidden * heads * qk_head
    kv_down = hidden * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank
    kv_up = mla.kv_lora_rank * heads * (mla.qk_nope_head_dim + mla.v_head_dim)
    out = heads * mla.v_head_dim * hidden
    return q + kv_down + kv_up + out


def kv_cache_bytes_per_gpu(cfg: ModelConfig, tokens: int, tensor_parallel: int, *, layers: int | None = None) -> int:
    """KV cache bytes on one GPU for one sequence of ``tokens`` tokens at the given tensor parallelism.

    KV heads are split across GPUs; when there are fewer KV heads than GPUs each GPU holds one replica.
    MLA caches a single latent vector per token per layer, replicated on every GPU.
    """
    n_layers = layers if layers is not None else cfg.num_layers
    if not n_layers or not cfg.hidden_size or not cfg.num_heads:
        return 0
    per_elem = cfg.activation_bytes
    if cfg.mla is not None:
        return int(n_layers * (cfg.mla.kv_lora_rank + cfg.mla.qk_rope_head_dim) * per_elem * tokens)
    kv_heads = cfg.num_kv_heads or cfg.num_heads
    heads_here = max(kv_heads // tensor_parallel, 1)
    head_dim = cfg.head_dim or cfg.hidden_size // cfg.num_heads
    return int(2 * n_layers * heads_here * head_dim * per_elem * tokens)


def weight_bytes_per_gpu(params: int, cfg: ModelConfig, tensor_parallel: int) -> int:
    """Weight bytes on one GPU when the model is split evenly over ``tensor_parallel`` GPUs."""
    return int(params * cfg.weight_bytes_per_param / tensor_parallel)
