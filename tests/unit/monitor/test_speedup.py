"""The speedup model: Leviathan et al.'s numbers for i.i.d. acceptance, and per-position rates beyond i.i.d."""

from __future__ import annotations

import math

import pytest

from specdeploy.monitor.speedup import (
    cost_ratio_from_params,
    expected_tokens,
    position_rates,
    recommend_depth,
    speedup,
)


@pytest.mark.parametrize(
    ("cost", "alphas", "depths"),
    [  # reference/vllm-speculative-decoding.md §6: k* maximising S for c and alpha
        (0.05, (0.6, 0.7, 0.8, 0.9), (4, 6, 8, 13)),
        (0.1, (0.6, 0.7, 0.8, 0.9), (3, 4, 6, 10)),
        (0.2, (0.6, 0.7, 0.8, 0.9), (2, 3, 4, 7)),
    ],
)
def test_recommended_depth_matches_the_reference_table(
    cost: float, alphas: tuple[float, ...], depths: tuple[int, ...]
) -> None:
    for alpha, depth in zip(alphas, depths, strict=True):
        # measured as vLLM would: per-position rates alpha^(i+1) for k=4, extrapolated beyond
        measured = [alpha ** (i + 1) for i in range(4)]
        best = recommend_depth(measured, cost, max_k=32)
        assert best is not None and best.k == depth, (cost, alpha)
        assert recommend_depth([alpha], cost, max_k=32).k == depth  # type: ignore[union-attr]


def test_expected_tokens_is_the_closed_form_for_iid_acceptance() -> None:
    alpha = 0.78
    for k in range(1, 9):
        closed_form = (1 - alpha ** (k + 1)) / (1 - alpha)
        assert expected_tokens([alpha], k) == pytest.approx(closed_form)
    # the reference fixture: alpha = 0.78, k = 4 gives E = 3.23 (measured 3.19)
    assert expected_tokens([0.78], 4) == pytest.approx(3.23, abs=0.005)
    assert speedup([0.78], 4, 0.1) == pytest.approx(expected_tokens([0.78], 4) / 1.4)


def test_measured_positions_are_used_as_they_are() -> None:
    measured = [0.78, 0.6, 0.46, 0.35]  # the reference fixture's per-position rates
    assert expected_tokens(measured, 4) == pytest.approx(3.19)  # = its measured mean accepted length
    assert expected_tokens(measured, 2) == pytest.approx(2.38)


def test_extrapolation_uses_the_last_ratio() -> None:
    rates = position_rates([0.8, 0.4], 5)
    assert rates == pytest.approx((0.8, 0.4, 0.2, 0.1, 0.05))
    assert position_rates([0.9], 3) == pytest.approx((0.9, 0.81, 0.729))
    assert position_rates([0.5, 0.0], 4) == (0.5, 0.0, 0.0, 0.0)


def test_noisy_rates_are_clamped_and_made_non_increasing() -> None:
    assert position_rates([1.2, 0.5, 0.7, -0.1], 4) == (1.0, 0.5, 0.5, 0.0)


def test_a_draft_that_falls_off_quickly_gets_a_shallower_depth_than_iid() -> None:
    iid = recommend_depth([0.8 ** (i + 1) for i in range(4)], 0.1)
    cliff = recommend_depth([0.8, 0.64, 0.1, 0.01], 0.1)
    assert iid is not None and cliff is not None
    assert cliff.k == 2 < iid.k


def test_speculation_not_worth_it() -> None:
    best = recommend_depth([0.0, 0.0, 0.0, 0.0], 0.05)  # the real capture: an unrelated draft
    assert best is not None
    assert best.k == 1 and not best.worthwhile and best.speedup < 1
    assert recommend_depth([], 0.1) is None


def test_cost_ratio_from_parameter_counts() -> None:
    assert cost_ratio_from_params(7e9, 70e9) == pytest.approx(0.1)
    assert cost_ratio_from_params(1.24e9, 8.03e9) == pytest.approx(0.1544, abs=1e-4)
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="draft_params"):
            cost_ratio_from_params(bad, 1e9)
    with pytest.raises(ValueError, match="target_params"):
        cost_ratio_from_params(1e9, 0)


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="cost_ratio"):
        recommend_depth([0.5], -0.1)
    with pytest.raises(ValueError, match="max_k"):
        recommend_depth([0.5], 0.1, max_k=0)
    with pytest.raises(ValueError, match=r"per_position\[1\]"):
        position_rates([0.5, math.nan], 2)
    with pytest.raises(ValueError, match="per_position is empty"):
        expected_tokens([], 2)
