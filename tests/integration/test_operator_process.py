"""The operator runs as a local process against the real API server: it connects, serves liveness and metrics,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import pytest
from tests.harness.operator import OperatorProcess

pytestmark = pytest.mark.integration


def test_operator_starts_and_stops_cleanly(operator: OperatorProcess) -> None:
    assert "specdeploy_reconcile_duration_seconds" in operator.metrics()
    code = operator.stop()
    logs = operator.logs()
    assert code == 0, logs[-3000:]
    assert "Traceback" not in logs, logs[-3000:]
    assert "Stop-flag is raised" in logs or "Stopping" in logs or "stopped" in logs.lower(), logs[-3000:]
