"""The shared refuse/accept table: pydantic gives the verdict the API server gives, naming the same field.

The same table was applied with `kubectl create --dry-run=server` to a real kube-apiserver 1.36 with the
generated CRD; an integration test can import `cases` to keep checking that side.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from specdeploy.api import SpeculativeDeploymentSpec
from specdeploy.api.errors import error_lines

from .cases import INVALID, VALID, Case


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_case_is_refused_naming_the_field(case: Case) -> None:
    with pytest.raises(ValidationError) as info:
        SpeculativeDeploymentSpec.model_validate(case.spec)
    lines = error_lines(info.value, prefix=["spec"])
    assert any(case.expect in line for line in lines), lines


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.id)
def test_valid_case_is_accepted(case: Case) -> None:
    SpeculativeDeploymentSpec.model_validate(case.spec)


def test_the_table_covers_at_least_a_dozen_refusals_and_every_cel_rule() -> None:
    assert len(INVALID) >= 12
    assert len({c.id for c in INVALID + VALID}) == len(INVALID + VALID)
