"""`specdeploy run` flags that change how replicas hand over: what a user types is what kopf gets, bad values fail."""

from __future__ import annotations

import pytest

from specdeploy.cli import build_parser
from specdeploy.commands.run import DEFAULT_PEERING_LIFETIME, MIN_PEERING_LIFETIME


def parse(*argv: str) -> object:
    return build_parser().parse_args(["run", "-n", "ns", *argv])


def test_peering_lifetime_defaults_to_kopfs_sixty_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPECDEPLOY_PEERING_LIFETIME", raising=False)
    assert parse("--peering", "p").peering_lifetime == DEFAULT_PEERING_LIFETIME == 60  # type: ignore[attr-defined]


def test_peering_lifetime_flag_is_taken() -> None:
    assert parse("--peering", "p", "--peering-lifetime", "20").peering_lifetime == 20  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["5", str(MIN_PEERING_LIFETIME - 1), "abc", "1.5"])
def test_a_too_short_or_non_numeric_lifetime_is_refused_naming_the_flag(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("--peering", "p", "--peering-lifetime", bad)
    assert exit_info.value.code == 2
    assert "--peering-lifetime" in capsys.readouterr().err


def test_a_bad_environment_default_fails_run_alone_as_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken SPECDEPLOY_PEERING_LIFETIME must not crash other subcommands (the validator image shares the CLI)."""
    monkeypatch.setenv("SPECDEPLOY_PEERING_LIFETIME", "abc")
    assert build_parser().parse_args(["crd"]).command == "crd"  # the parser builds: other subcommands still work
    with pytest.raises(SystemExit) as exit_info:
        parse("--peering", "p")
    assert exit_info.value.code == 2
    assert "--peering-lifetime" in capsys.readouterr().err
