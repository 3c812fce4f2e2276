"""The nine checks of the report contract, run in contract order over one target/draft pair."""

from __future__ import annotations

from collections.abc import Callable

from specdeploy.validate.checks.architecture import check_architecture
from specdeploy.validate.checks.context_length import check_context_length
from specdeploy.validate.checks.dtype import check_dtype
from specdeploy.validate.checks.pair import Options, Pair
from specdeploy.validate.checks.sizing import check_memory, check_parameter_ratio
from specdeploy.validate.checks.special_tokens import check_special_tokens
from specdeploy.validate.checks.tensor_parallel import check_tensor_parallel
from specdeploy.validate.checks.vocabulary import check_token_ids, check_vocabulary
from specdeploy.validate.report import CHECK_NAMES, Check

__all__ = ["ALL_CHECKS", "Options", "Pair", "run_checks"]

ALL_CHECKS: tuple[Callable[[Pair], Check], ...] = (
    check_vocabulary,
    check_token_ids,
    check_special_tokens,
    check_context_length,
    check_tensor_parallel,
    check_architecture,
    check_parameter_ratio,
    check_memory,
    check_dtype,
)


def run_checks(pair: Pair) -> list[Check]:
    """Every check, in the order of ``report.CHECK_NAMES``."""
    checks = [check(pair) for check in ALL_CHECKS]
    assert tuple(c.name for c in checks) == CHECK_NAMES
    return checks
