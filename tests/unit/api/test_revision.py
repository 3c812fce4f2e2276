"""The revision id: changes exactly when what the pods serve changes."""

from __future__ import annotations

import re
from typing import Any

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.revision import canonical_serving_spec, revision_id

BASE: dict[str, Any] = {"target": {"model": "org/target", "tensorParallelSize": 2}, "draft": {"model": "org/draft"}}


def rid(raw: dict[str, Any]) -> str:
    return revision_id(SpeculativeDeploymentSpec.model_validate(raw))


def with_(section: str, **values: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {key: dict(value) for key, value in BASE.items()}
    raw[section] = {**raw.get(section, {}), **values}
    return raw


def test_id_is_ten_lowercase_hex_characters_and_deterministic() -> None:
    assert re.fullmatch(r"[0-9a-f]{10}", rid(BASE))
    assert rid(BASE) == rid(BASE)


def test_changing_k_or_anything_served_changes_the_id() -> None:
    base = rid(BASE)
    changed = [
        with_("speculation", numSpeculativeTokens=5),
        with_("speculation", method="eagle"),
        with_("target", model="org/other"),
        with_("target", tensorParallelSize=4),
        with_("draft", model="org/other-draft"),
        with_("draft", revision="v2"),
        with_("serving", image="vllm/vllm-openai:v0.33.0"),
        with_("serving", extraArgs=["--max-num-seqs", "8"]),
        with_("serving", hfTokenSecretRef={"name": "hf"}),
        with_("speculation", heterogeneousVocab=True),
    ]
    ids = [rid(raw) for raw in changed]
    assert base not in ids
    assert len(set(ids)) == len(ids)


def test_replicas_rollback_metrics_and_validation_do_not_change_the_id() -> None:
    base = rid(BASE)
    assert rid({**BASE, "replicas": 7}) == base
    assert rid(with_("rollback", minAcceptanceRate=0.8, action="DisableSpeculation")) == base
    assert rid(with_("metrics", scrapeIntervalSeconds=30)) == base
    assert rid(with_("validation", policy="Warn", gpuMemoryGiB=80)) == base


def test_key_order_and_explicit_defaults_do_not_change_the_id() -> None:
    reordered = {"draft": {"model": "org/draft"}, "target": {"tensorParallelSize": 2, "model": "org/target"}}
    explicit = {
        "target": {"model": "org/target", "tensorParallelSize": 2, "dtype": "auto"},
        "draft": {"model": "org/draft"},
        "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
        "serving": {"port": 8000, "shmSize": "8Gi", "gpuResource": "nvidia.com/gpu"},
    }
    assert rid(reordered) == rid(explicit) == rid(BASE)


def test_hashed_text_is_canonical_json_of_the_serving_sections_only() -> None:
    text = canonical_serving_spec(SpeculativeDeploymentSpec.model_validate(BASE))
    assert text.startswith('{"draft":{"model":"org/draft"},"serving":{')
    assert " " not in text
    for excluded in ("replicas", "rollback", "metrics", "validation"):
        assert f'"{excluded}"' not in text


def test_heterogeneous_vocab_off_keeps_the_ids_from_before_the_field_existed() -> None:
    # An operator upgrade must not give every existing SpeculativeDeployment a new revision (that would re-run
    # validation and restart its GPU pods): the field is left out of the hashed text while false.
    assert rid(with_("speculation", heterogeneousVocab=False)) == rid(BASE) == "37d734cf5e"  # main's id for BASE
    assert "heterogeneous" not in canonical_serving_spec(SpeculativeDeploymentSpec.model_validate(BASE))
    on = canonical_serving_spec(SpeculativeDeploymentSpec.model_validate(with_("speculation", heterogeneousVocab=True)))
    assert '"heterogeneousVocab":true' in on


def test_control_group_and_adaptive_settings_never_change_the_id() -> None:
    # Issue 14: adding control pods or turning the adaptive loop on must not restart the speculative pods.
    base = rid(BASE)
    assert base == "37d734cf5e"  # main's id for BASE, before these fields existed
    assert rid(with_("speculation", control={"replicas": 3, "minOutputTokens": 50})) == base
    assert rid(with_("speculation", adaptive={"enabled": True, "minIntervalSeconds": 60})) == base
    assert rid({**with_("speculation", control={"replicas": 1}), "rollback": {"minSpeedup": 1.1}}) == base
    text = canonical_serving_spec(
        SpeculativeDeploymentSpec.model_validate(with_("speculation", control={"replicas": 3}, adaptive={}))
    )
    assert "control" not in text and "adaptive" not in text


def test_a_batch_size_schedule_is_a_new_revision() -> None:
    schedule = [{"start": 1, "end": 1, "tokens": 4}, {"start": 2, "end": 256, "tokens": 0}]
    first = rid(with_("speculation", numSpeculativeTokensPerBatchSize=schedule))
    assert first != rid(BASE)
    other = [{"start": 1, "end": 2, "tokens": 4}, {"start": 3, "end": 256, "tokens": 0}]
    assert rid(with_("speculation", numSpeculativeTokensPerBatchSize=other)) not in (first, rid(BASE))
