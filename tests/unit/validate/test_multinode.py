"""Pipeline stages and multi-node replicas in the validator: layer split, whole nodes, memory on the draft's stage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from tests.harness import zoo
from tests.unit.validate.conftest import Run

from specdeploy.api.spec import SpeculativeDeploymentSpec
from specdeploy.render.job import validator_args
from specdeploy.validate.checks.multinode import stage_layers
from specdeploy.validate.cli import add_arguments


def llama(folder: Path, config: dict[str, Any]) -> Path:
    return zoo.llama(folder, config, eos="<|eot_id|>")


def check(outcome: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in outcome.report["checks"] if c["name"] == name)
    return found


@pytest.mark.parametrize(
    ("layers", "stages", "split"),
    [(126, 2, [63, 63]), (61, 2, [31, 30]), (10, 4, [2, 3, 3, 2]), (7, 3, [2, 3, 2])],
)
def test_layers_split_as_vllm_splits_them(layers: int, stages: int, split: list[int]) -> None:
    assert stage_layers(layers, stages) == split
    assert sum(split) == layers


def test_llama_405b_on_two_nodes_passes_and_names_the_stages(run: Run, tmp_path: Path) -> None:
    out = run(
        llama(tmp_path / "t", zoo.LLAMA_31_405B_INSTRUCT),
        llama(tmp_path / "d", zoo.LLAMA_32_1B_INSTRUCT),
        tensor_parallel=8,
        pipeline_parallel=2,
        max_model_len=16384,
        gpu_memory_gib=80,
    )
    tp = check(out, "tensor_parallel")
    assert tp["status"] == "pass" and "PP 2" in tp["message"]
    memory = check(out, "memory")
    assert memory["status"] == "pass", memory["message"]
    assert "last of 2 pipeline stages" in memory["message"] and "where the draft runs" in memory["message"]


def test_llama_405b_on_one_node_does_not_fit_80gb_gpus(run: Run, tmp_path: Path) -> None:
    out = run(
        llama(tmp_path / "t", zoo.LLAMA_31_405B_INSTRUCT),
        llama(tmp_path / "d", zoo.LLAMA_32_1B_INSTRUCT),
        tensor_parallel=8,
        max_model_len=16384,
        gpu_memory_gib=80,
    )
    assert check(out, "memory")["status"] == "warn"


def test_uneven_layers_warn_with_vllms_split(run: Run, tmp_path: Path) -> None:
    target = {**zoo.LLAMA_31_8B_INSTRUCT, "num_hidden_layers": 31}
    out = run(llama(tmp_path / "t", target), llama(tmp_path / "d", zoo.LLAMA_32_1B_INSTRUCT), pipeline_parallel=2)
    tp = check(out, "tensor_parallel")
    assert tp["status"] == "warn"
    assert "31 layers do not divide by 2 pipeline stages" in tp["message"] and "16+15" in tp["message"]


def test_fewer_layers_than_stages_fail(run: Run, tmp_path: Path) -> None:
    target = {**zoo.LLAMA_31_8B_INSTRUCT, "num_hidden_layers": 4}
    out = run(llama(tmp_path / "t", target), llama(tmp_path / "d", zoo.LLAMA_32_1B_INSTRUCT), pipeline_parallel=8)
    tp = check(out, "tensor_parallel")
    assert tp["status"] == "fail" and "4 layers cannot fill 8 pipeline stages" in tp["message"]


def test_a_replica_that_is_not_whole_nodes_fails(run: Run, tmp_path: Path) -> None:
    out = run(
        llama(tmp_path / "t", zoo.LLAMA_31_8B_INSTRUCT),
        llama(tmp_path / "d", zoo.LLAMA_32_1B_INSTRUCT),
        tensor_parallel=4,
        pipeline_parallel=4,
        gpus_per_node=6,
    )
    tp = check(out, "tensor_parallel")
    assert tp["status"] == "fail" and "16 GPUs is more than one 6-GPU node" in tp["message"]


def test_heads_must_still_divide_by_tp_in_a_multi_node_replica(run: Run, tmp_path: Path) -> None:
    target = {**zoo.LLAMA_31_8B_INSTRUCT, "num_attention_heads": 24, "num_key_value_heads": 8}
    out = run(
        llama(tmp_path / "t", target),
        llama(tmp_path / "d", zoo.LLAMA_32_1B_INSTRUCT),
        tensor_parallel=16,
        pipeline_parallel=1,
    )
    assert check(out, "tensor_parallel")["status"] == "fail"


def test_the_job_passes_pipeline_stages_and_gpus_per_node_to_the_validator() -> None:
    spec = SpeculativeDeploymentSpec.model_validate(
        {
            "target": {"model": "org/t", "tensorParallelSize": 4, "pipelineParallelSize": 3},
            "draft": {"model": "org/d"},
            "serving": {"gpusPerNode": 4},
        }
    )
    args = validator_args(spec)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(args)
    assert (parsed.pipeline_parallel_size, parsed.gpus_per_node, parsed.tensor_parallel_size) == (3, 4, 4)
