"""`specdeploy run`'s admin-policy flags: what the chart passes is the policy the operator enforces."""

from __future__ import annotations

import argparse

import pytest

from specdeploy.cli import build_parser
from specdeploy.commands.run import admin_policy
from specdeploy.policy import ANY, AdminPolicy


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "-n", "ns", *argv])


def test_no_policy_flag_keeps_every_list_open_but_refuses_trust_remote_code() -> None:
    policy = admin_policy(parse())
    assert policy == AdminPolicy()
    assert policy.images == policy.service_accounts == policy.priority_classes == policy.prometheus_urls == (ANY,)
    assert policy.allow_trust_remote_code is False and policy.reserved_env == ()


def test_lists_are_comma_separated_repeatable_and_empty_means_nothing() -> None:
    policy = admin_policy(
        parse(
            "--allowed-images", "vllm/vllm-openai:*, registry.example.com/llm/*",
            "--allowed-images", "ghcr.io/org/*",
            "--allowed-service-accounts=",
            "--allowed-priority-classes", "gpu",
            "--allowed-prometheus-urls", "http://prometheus.monitoring:9090",
            "--reserved-env", "CUDA_VISIBLE_DEVICES",
            "--allow-trust-remote-code",
        )
    )  # fmt: skip
    assert policy.images == ("vllm/vllm-openai:*", "registry.example.com/llm/*", "ghcr.io/org/*")
    assert policy.service_accounts == ()
    assert policy.priority_classes == ("gpu",)
    assert policy.prometheus_urls == ("http://prometheus.monitoring:9090",)
    assert policy.reserved_env == ("CUDA_VISIBLE_DEVICES",)
    assert policy.allow_trust_remote_code is True


@pytest.mark.parametrize("url", ["http://user:pw@prometheus:9090", "http://prometheus:9090/#x", "ftp://prometheus"])
def test_a_bad_allowed_prometheus_url_is_a_usage_error_naming_the_flag(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--allowed-prometheus-urls", url)
    assert exit_info.value.code == 2
    assert "--allowed-prometheus-urls" in capsys.readouterr().err
