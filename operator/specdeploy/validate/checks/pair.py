"""What every check reads: the two models and the deployment options (method, parallelism, lengths, GPU)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from specdeploy.validate.methods import default_draft_tp
from specdeploy.validate.models import Model
from specdeploy.validate.vocabdiff import Overlap, vocabulary_overlap

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # vLLM's --gpu-memory-utilization default


@dataclass(frozen=True)
class Options:
    """The deployment the pair is checked for, as the renderer passes it to ``specdeploy validate``."""

    method: str = "draft_model"
    tensor_parallel: int = 1
    draft_tensor_parallel: int | None = None
    max_model_len: int | None = None
    gpu_memory_gib: float | None = None
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    # vLLM's ``use_heterogeneous_vocab`` speculative-config key (draft_model only): a draft with another vocabulary
    heterogeneous_vocab: bool = False


@dataclass(frozen=True)
class Pair:
    """Target, draft (None for n-gram, or MTP without a separate draft) and options."""

    target: Model
    draft: Model | None
    options: Options

    @property
    def method(self) -> str:
        return self.options.method

    @property
    def draft_tp(self) -> int:
        given = self.options.draft_tensor_parallel
        return given if given is not None else default_draft_tp(self.method, self.options.tensor_parallel)

    @property
    def max_model_len(self) -> int | None:
        """The serving length: ``--max-model-len`` if given, else what vLLM derives from the target config."""
        return self.options.max_model_len or self.target.config.max_len

    @cached_property
    def overlap(self) -> Overlap | None:
        """Tokens both vocabularies hold, whatever their ids (None without both tokenizers). Computed once, and only
        when a check asks, which is when the vocabularies differ."""
        if self.draft is None or self.target.vocab is None or self.draft.vocab is None:
            return None
        return vocabulary_overlap(self.target.vocab, self.draft.vocab)
