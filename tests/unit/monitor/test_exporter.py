"""The operator's own metrics: exact names (a dashboard depends on them), forgetting deleted objects, serving."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from specdeploy.monitor import exporter
from specdeploy.monitor.acceptance import Acceptance

ACCEPTANCE = Acceptance(
    engine="v1",
    rate=0.62,
    mean_accepted_length=3.4,
    per_position=(0.8, 0.6),
    drafts=10.0,
    draft_tokens=40.0,
    accepted_tokens=24.8,
)


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    page = generate_latest(exporter.REGISTRY).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def test_names_and_labels_are_the_dashboard_contract() -> None:
    exporter.record_acceptance("llm", "exact", ACCEPTANCE, recommended_k=5)
    exporter.count_rollback("llm", "exact")
    exporter.count_scrape_error("llm", "exact", "timeout")
    exporter.RECONCILE_DURATION.labels("reconcile").observe(0.02)
    exporter.SCRAPE_DURATION.observe(0.003)
    seen = samples()
    obj = (("name", "exact"), ("namespace", "llm"))
    assert seen[("specdeploy_acceptance_rate", obj)] == 0.62
    assert seen[("specdeploy_mean_accepted_length", obj)] == 3.4
    assert seen[("specdeploy_recommended_num_speculative_tokens", obj)] == 5
    assert seen[("specdeploy_rollbacks_total", obj)] >= 1
    assert seen[("specdeploy_scrape_errors_total", (*obj, ("reason", "timeout")))] >= 1
    assert seen[("specdeploy_reconcile_duration_seconds_count", (("handler", "reconcile"),))] >= 1
    assert seen[("specdeploy_scrape_duration_seconds_count", ())] >= 1
    assert any(name == "process_resident_memory_bytes" for name, _ in seen)
    exporter.forget("llm", "exact")


def test_forget_drops_every_series_of_the_object_only() -> None:
    for name in ("gone", "kept"):
        exporter.record_acceptance("llm", name, ACCEPTANCE, recommended_k=4)
        exporter.count_rollback("llm", name)
        exporter.count_scrape_error("llm", name, "connection")
        exporter.count_scrape_error("llm", name, "parse")
    exporter.forget("llm", "gone")
    exporter.forget("llm", "never-existed")
    names = {dict(labels).get("name") for (_, labels) in samples()}
    assert "gone" not in names and "kept" in names
    exporter.forget("llm", "kept")


def test_unknown_values_remove_gauges_instead_of_exporting_stale_ones() -> None:
    exporter.record_acceptance("llm", "quiet", ACCEPTANCE, recommended_k=3)
    no_data = Acceptance("v1", None, None, (), 0.0, 0.0, 0.0)
    exporter.record_acceptance("llm", "quiet", no_data, recommended_k=None)
    assert not any(dict(labels).get("name") == "quiet" for (_, labels) in samples())


def test_scrape_error_reasons_are_a_fixed_set() -> None:
    with pytest.raises(ValueError, match="unknown scrape error reason 'oops'"):
        exporter.count_scrape_error("llm", "x", "oops")


def test_exporter_serves_metrics_over_http() -> None:
    server, thread = exporter.start_exporter(0, "127.0.0.1")
    try:
        exporter.record_acceptance("llm", "served", ACCEPTANCE, recommended_k=2)
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        rates = [
            s for f in text_string_to_metric_families(body) for s in f.samples if s.name == "specdeploy_acceptance_rate"
        ]
        assert [(r.labels, r.value) for r in rates if r.labels["name"] == "served"] == [
            ({"namespace": "llm", "name": "served"}, 0.62)
        ]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        exporter.forget("llm", "served")


def test_speed_per_revision_follows_the_serving_and_canary_revisions() -> None:
    from specdeploy.monitor.speed import Speed

    fast = Speed(output_tokens=600, tokens_per_second=10.0, request_tpot_seconds=0.02, requests=3, running_requests=2)
    slow = Speed(output_tokens=600, tokens_per_second=6.0, inter_token_seconds=0.03, steps=600)
    exporter.record_speed("llm", "speedy", {"rev-a": fast, "rev-b": slow})
    seen = samples()
    a = (("name", "speedy"), ("namespace", "llm"), ("revision", "rev-a"))
    b = (("name", "speedy"), ("namespace", "llm"), ("revision", "rev-b"))
    assert seen[("specdeploy_time_per_output_token_seconds", a)] == 0.02
    assert seen[("specdeploy_time_per_output_token_seconds", b)] == 0.03, "the inter-token latency stands in"
    assert seen[("specdeploy_generation_tokens_per_second", a)] == 10.0
    assert seen[("specdeploy_running_requests", a)] == 2
    assert ("specdeploy_running_requests", b) not in seen, "unknown: no series rather than a stale one"
    exporter.record_speed("llm", "speedy", {"rev-b": slow})  # the canary took over, rev-a is gone
    seen = samples()
    assert ("specdeploy_time_per_output_token_seconds", a) not in seen
    assert ("specdeploy_time_per_output_token_seconds", b) in seen
    exporter.forget("llm", "speedy")
    assert not [k for k in samples() if ("name", "speedy") in k[1]]
