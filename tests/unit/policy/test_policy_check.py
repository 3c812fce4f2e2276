"""The admin's policy as a pure check: what a spec may ask the operator to run, and how a refusal reads.

Why: a user who may only create SpeculativeDeployments must not get, through the operator, pods that run another
image, send the Hugging Face token elsewhere, load other code or trust remote code, nor make the operator query a
URL of their choosing. Each refusal names the field and never quotes a long value whole.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.policy import (
    RESERVED_ENV,
    AdminPolicy,
    check,
    permits_metrics_source,
    prometheus_url_allowed,
    url_problem,
)

BASE: dict[str, Any] = {
    "target": {"model": "org/target-70b", "tensorParallelSize": 4},
    "draft": {"model": "org/draft-7b"},
}


def spec(**serving: Any) -> SpeculativeDeploymentSpec:
    body = copy.deepcopy(BASE)
    body["serving"] = serving
    return SpeculativeDeploymentSpec.model_validate(body)


def with_prometheus(url: str) -> SpeculativeDeploymentSpec:
    body = {**copy.deepcopy(BASE), "metrics": {"source": "Prometheus", "prometheus": {"url": url}}}
    return SpeculativeDeploymentSpec.model_validate(body)


def fields(violations: list[Any]) -> list[str]:
    return [v.field for v in violations]


def test_the_default_policy_lets_an_ordinary_spec_run() -> None:
    full = spec(
        image="registry.example.com/vllm:1",
        env=[{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
        extraArgs=["--max-num-seqs", "64"],
        serviceAccountName="llm",
        priorityClassName="high",
    )
    assert check(full, AdminPolicy()) == []


def test_an_image_outside_the_allow_list_is_refused_naming_the_field() -> None:
    policy = AdminPolicy(images=("vllm/vllm-openai:*", "registry.example.com/llm/*"))
    assert check(spec(image="vllm/vllm-openai:v0.32.0"), policy) == []
    assert check(spec(image="registry.example.com/llm/vllm:1"), policy) == []
    [v] = check(spec(image="evil.example.com/vllm-openai:v0.32.0"), policy)
    assert v.field == "spec.serving.image"
    assert v.message.startswith("spec.serving.image: image 'evil.example.com/vllm-openai:v0.32.0' is not allowed")
    assert "vllm/vllm-openai:*" in v.message


def test_the_validator_image_is_checked_too_and_the_operators_default_is_not() -> None:
    policy = AdminPolicy(images=("vllm/vllm-openai:*",))
    body = {**copy.deepcopy(BASE), "validation": {"image": "evil.example.com/validator:1"}}
    assert fields(check(SpeculativeDeploymentSpec.model_validate(body), policy)) == ["spec.validation.image"]
    assert check(SpeculativeDeploymentSpec.model_validate(BASE), policy) == []


def test_an_empty_image_list_allows_nothing() -> None:
    assert fields(check(spec(), AdminPolicy(images=()))) == ["spec.serving.image"]


@pytest.mark.parametrize(
    "name",
    ["HF_ENDPOINT", "HTTP_PROXY", "https_proxy", "No_Proxy", "ALL_PROXY", "all_proxy", "LD_PRELOAD", "PYTHONPATH",
     "REQUESTS_CA_BUNDLE", "VLLM_LOGGING_CONFIG_PATH"],
)  # fmt: skip
def test_reserved_environment_names_are_refused_in_any_case(name: str) -> None:
    env = [{"name": "OK", "value": "1"}, {"name": name, "value": "http://evil.example.com"}]
    [v] = check(spec(env=env), AdminPolicy())
    assert v.field == "spec.serving.env[1].name"
    assert v.message.startswith(f"spec.serving.env[1].name: '{name}' may not be set by a spec (")
    assert "evil.example.com" not in v.message  # the value is not repeated


def test_the_reserved_list_has_at_least_what_the_issue_names() -> None:
    assert {"HF_ENDPOINT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "LD_PRELOAD", "PYTHONPATH"} <= set(
        RESERVED_ENV
    )


def test_the_admin_can_reserve_more_names() -> None:
    policy = AdminPolicy(reserved_env=("CUDA_VISIBLE_DEVICES",))
    assert fields(check(spec(env=[{"name": "cuda_visible_devices", "value": "0"}]), policy)) == [
        "spec.serving.env[0].name"
    ]


@pytest.mark.parametrize(
    "arg", ["--trust-remote-code", "--trust_remote_code", "--trust-remote-code=true", "--trust-remote", "--trust"]
)
def test_trust_remote_code_is_refused_unless_the_admin_allows_it(arg: str) -> None:
    s = spec(extraArgs=["--max-num-seqs", "8", arg])
    [v] = check(s, AdminPolicy())
    assert v.field == "spec.serving.extraArgs[2]"
    assert "--trust-remote-code" in v.message
    assert check(s, AdminPolicy(allow_trust_remote_code=True)) == []


def test_flags_that_only_look_alike_are_not_trust_remote_code() -> None:
    args = ["--tokenizer-mode", "auto", "--no-trust-remote-code", "trust-remote-code"]
    assert check(spec(extraArgs=args), AdminPolicy()) == []


def test_service_accounts_and_priority_classes_follow_their_lists_and_unset_is_always_allowed() -> None:
    policy = AdminPolicy(service_accounts=("llm-*",), priority_classes=("gpu-batch",))
    assert check(spec(), policy) == []
    assert check(spec(serviceAccountName="llm-serving", priorityClassName="gpu-batch"), policy) == []
    refused = check(spec(serviceAccountName="ci-deployer", priorityClassName="system-cluster-critical"), policy)
    assert fields(refused) == ["spec.serving.serviceAccountName", "spec.serving.priorityClassName"]
    assert "ServiceAccount 'ci-deployer'" in refused[0].message
    assert "PriorityClass 'system-cluster-critical'" in refused[1].message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://admin:secret@prometheus.monitoring:9090", "userinfo"),
        ("http://prometheus.monitoring:9090@169.254.169.254", "userinfo"),
        ("http://prometheus.monitoring:9090/#frag", "fragment"),
        ("http://prometheus.monitoring:9090/?x=1", "query"),
        ("http://prometheus.monitoring:9090/prom/../admin", "'..'"),
        ("http://prometheus.monitoring:9090/prom/%2e%2e/admin", "'..'"),
        ("http://prometheus.monitoring:99999", "valid URL"),
    ],
)
def test_a_prometheus_url_with_userinfo_query_fragment_or_dot_segments_is_refused_whatever_the_list(
    url: str, problem: str
) -> None:
    [v] = check(with_prometheus(url), AdminPolicy())
    assert v.field == "spec.metrics.prometheus.url"
    assert problem in v.message
    assert url_problem(url) is not None
    assert not permits_metrics_source(with_prometheus(url), AdminPolicy())


ALLOWED = ("http://prometheus.monitoring:9090", "https://thanos.example.com/tenant-a")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://prometheus.monitoring:9090", True),
        ("http://prometheus.monitoring:9090/", True),
        ("http://PROMETHEUS.monitoring:9090", True),
        ("https://thanos.example.com/tenant-a", True),
        ("https://thanos.example.com:443/tenant-a/sub", True),
        ("https://thanos.example.com/tenant-ab", False),
        ("https://thanos.example.com/tenant-b", False),
        ("http://thanos.example.com/tenant-a", False),
        ("http://prometheus.monitoring:9091", False),
        ("http://prometheus.monitoring", False),
        ("http://prometheus.monitoring.evil.example.com:9090", False),
        ("http://169.254.169.254/latest/meta-data", False),
    ],
)
def test_a_prometheus_url_must_be_one_of_the_allowed_bases_or_below_one(url: str, allowed: bool) -> None:
    assert prometheus_url_allowed(url, ALLOWED) is allowed
    violations = check(with_prometheus(url), AdminPolicy(prometheus_urls=ALLOWED))
    assert fields(violations) == ([] if allowed else ["spec.metrics.prometheus.url"])
    assert permits_metrics_source(with_prometheus(url), AdminPolicy(prometheus_urls=ALLOWED)) is allowed


def test_no_prometheus_url_is_allowed_with_an_empty_list_and_pods_scraping_needs_none() -> None:
    policy = AdminPolicy(prometheus_urls=())
    assert fields(check(with_prometheus("http://prometheus.monitoring:9090"), policy)) == [
        "spec.metrics.prometheus.url"
    ]
    assert check(spec(), policy) == [] and permits_metrics_source(spec(), policy)


def test_a_long_refused_value_is_quoted_only_in_part() -> None:
    image = "evil.example.com/" + "x" * 480
    [v] = check(spec(image=image), AdminPolicy(images=("vllm/*",)))
    assert image not in v.message
    assert "(497 characters)" in v.message
    assert len(v.message) < 200


def test_every_violation_is_reported_in_manifest_order() -> None:
    s = SpeculativeDeploymentSpec.model_validate(
        {
            **copy.deepcopy(BASE),
            "serving": {
                "image": "evil/vllm:1",
                "env": [{"name": "HF_ENDPOINT", "value": "https://evil.example.com"}],
                "extraArgs": ["--trust-remote-code"],
                "serviceAccountName": "admin",
                "priorityClassName": "system-node-critical",
            },
            "validation": {"image": "evil/validator:1"},
            "metrics": {"source": "Prometheus", "prometheus": {"url": "http://169.254.169.254"}},
        }
    )
    policy = AdminPolicy(images=("vllm/*",), service_accounts=(), priority_classes=(), prometheus_urls=())
    assert fields(check(s, policy)) == [
        "spec.serving.image",
        "spec.validation.image",
        "spec.serving.env[0].name",
        "spec.serving.extraArgs[0]",
        "spec.serving.serviceAccountName",
        "spec.serving.priorityClassName",
        "spec.metrics.prometheus.url",
    ]
