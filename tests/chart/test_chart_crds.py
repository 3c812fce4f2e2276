"""The chart ships the same CRD as crds/, byte for byte.

Helm installs the chart's crds/ on a first install, while `kubectl apply --server-side -f crds/` is the upgrade
path (docs/install.md): if the two drifted, a Helm user and a kubectl user would get different schemas.
`make crd` regenerates crds/ and copies it into the chart.
"""

from __future__ import annotations

import pytest

from tests.chart.conftest import CHART, REPO

pytestmark = pytest.mark.chart


def test_chart_crds_are_byte_identical_to_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").iterdir() if p.is_file()}
    assert top, "crds/ holds no CRD"
    assert sorted(chart) == sorted(top), "charts/specdeploy/crds/ and crds/ hold different files; run `make crd`"
    stale = [name for name in top if chart[name] != top[name]]
    assert not stale, f"charts/specdeploy/crds/{stale} differ from crds/; run `make crd`"
