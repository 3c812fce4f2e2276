"""The chart and the operator's command line agree: every argument list the chart renders parses.

A chart that passes a flag `specdeploy run` does not know makes the operator pod crash-loop at start; this
parses the rendered args with the real CLI parser (without running the operator).
"""

from __future__ import annotations

import pytest

from specdeploy.cli import build_parser
from tests.chart.conftest import Render

pytestmark = pytest.mark.chart


@pytest.mark.parametrize(
    "values",
    [(), ("ci/namespaced-values.yaml",), ("ci/clusterwide-values.yaml",)],
    ids=["default", "namespaced", "clusterwide"],
)
def test_rendered_operator_args_parse_with_specdeploy_run(render: Render, values: tuple[str, ...]) -> None:
    deployment = next(d for d in render(*values) if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.command == "run"
    assert callable(args.func)
    watched = [a for i, a in enumerate(container["args"]) if i and container["args"][i - 1] == "--namespace"]
    assert args.namespace == watched
    assert args.all_namespaces is (not watched)
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert args.metrics_port == port


def test_log_levels_map_to_run_flags(render: Render) -> None:
    for level, verbose, debug in (("info", False, False), ("verbose", True, False), ("debug", False, True)):
        deployment = next(d for d in render(sets=(f"logLevel={level}",)) if d["kind"] == "Deployment")
        args = build_parser().parse_args(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
        assert (args.verbose, args.debug) == (verbose, debug), level
