"""What pipeline stages and multi-node replicas add to the ``tensor_parallel`` and ``memory`` checks.

Facts of vLLM 0.32 these rules follow:
- Layers are split over the pipeline stages by ``vllm.distributed.utils.get_pp_indices``: evenly when they
  divide, else the remainder goes to the stages before the last (DeepSeek-V3's 61 layers on 2 stages are 31 + 30).
  So uneven layers are allowed but make the largest stage the pace of the pipeline (a warning); fewer layers
  than stages leaves a stage empty (a failure).
- A replica of ``TP x PP`` GPUs on nodes of ``gpusPerNode`` GPUs is a group of whole nodes: when it exceeds one
  node it must be a multiple of it (the API refuses otherwise; the check repeats it for the standalone CLI).
- The draft runs on the last pipeline rank only (``gpu_model_runner`` builds the drafter when
  ``get_pp_group().is_last_rank``), on the GPUs of the last stage, next to that stage's share of the target.
  With PP > 1 across nodes that is the group's last node, not the leader's.
"""

from __future__ import annotations

import math

from specdeploy.validate.checks.pair import Pair

DEFAULT_GPUS_PER_NODE = 8


def stage_layers(layers: int, stages: int) -> list[int]:
    """Layers per pipeline stage as vLLM 0.32 splits them (no VLLM_PP_LAYER_PARTITION override)."""
    per = [layers // stages] * stages
    for i in range(2, layers % stages + 2):
        per[-i] += 1
    return per


def pipeline_problems(pair: Pair) -> tuple[list[str], list[str]]:
    """(failures, warnings) about pipeline stages and GPUs per node for the target."""
    opts = pair.options
    stages, failures, warnings = opts.pipeline_parallel, [], []
    layers = pair.target.config.num_layers
    if stages > 1 and layers is not None:
        if layers < stages:
            failures.append(f"target: {layers} layers cannot fill {stages} pipeline stages")
        elif layers % stages:
            split = "+".join(str(n) for n in stage_layers(layers, stages))
            warnings.append(
                f"target: {layers} layers do not divide by {stages} pipeline stages; vLLM splits them {split}, "
                "so the largest stage sets the pace"
            )
    gpus, per_node = opts.tensor_parallel * stages, opts.gpus_per_node or DEFAULT_GPUS_PER_NODE
    if gpus > per_node and gpus % per_node:
        failures.append(
            f"TP {opts.tensor_parallel} x PP {stages} = {gpus} GPUs is more than one {per_node}-GPU node and not a "
            "multiple of it: a multi-node replica is a group of whole nodes"
        )
    return failures, warnings


def last_stage_layers(pair: Pair) -> int | None:
    """Target layers on the last pipeline stage (where the draft runs); all of them without pipeline stages."""
    layers = pair.target.config.num_layers
    if layers is None or pair.options.pipeline_parallel <= 1:
        return layers
    return stage_layers(layers, pair.options.pipeline_parallel)[-1] if layers >= pair.options.pipeline_parallel else 1


def target_weight_share(params: int, pair: Pair) -> int:
    """Target parameters held by one GPU of the last stage: its layers' share, split over TP (embeddings spread)."""
    layers = pair.target.config.num_layers
    stages = pair.options.pipeline_parallel
    if stages <= 1 or not layers:
        return params
    here = last_stage_layers(pair) or layers
    return math.ceil(params * here / layers)


def nodes(pair: Pair) -> int:
    """Nodes one replica spans (1 when it fits one node)."""
    gpus = pair.options.tensor_parallel * pair.options.pipeline_parallel
    per_node = pair.options.gpus_per_node or DEFAULT_GPUS_PER_NODE
    return max(1, gpus // per_node) if gpus > per_node else 1
