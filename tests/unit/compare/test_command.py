"""``specdeploy compare-drafts`` argument handling and its errors (the measuring itself is in the e2e tier)."""

from __future__ import annotations

from pathlib import Path

import pytest

from specdeploy.cli import build_parser, main


def test_the_command_is_registered_with_its_defaults() -> None:
    args = build_parser().parse_args(["compare-drafts", "--target", "t", "--draft", "a", "--draft", "b=c"])
    assert args.draft == ["a", "b=c"]
    assert args.context_lengths == (256, 1024, 4096)
    assert args.num_speculative_tokens == 4
    assert args.output == "table"


def test_context_lengths_are_sorted_and_deduplicated() -> None:
    args = build_parser().parse_args(
        ["compare-drafts", "--target", "t", "--draft", "a", "--context-lengths", "1024,64,64"]
    )
    assert args.context_lengths == (64, 1024)


@pytest.mark.parametrize("value", ["abc", "0,64", ""])
def test_bad_context_lengths_are_refused_naming_the_option(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compare-drafts", "--target", "t", "--draft", "a", "--context-lengths", value])
    assert info.value.code == 2
    assert "--context-lengths" in capsys.readouterr().err


def test_without_vllm_the_command_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPECDEPLOY_CACHE", str(tmp_path))
    monkeypatch.delenv("SPECDEPLOY_VLLM_PYTHON", raising=False)
    assert main(["compare-drafts", "--target", str(tmp_path), "--draft", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no vLLM found" in err and "hack/vllm/install.sh" in err


def test_a_bad_prompt_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare-drafts", "--target", "t", "--draft", "d", "--prompts", str(tmp_path / "nope.txt")])
    assert code == 2
    assert "nope.txt: cannot read" in capsys.readouterr().err


def test_an_unreadable_target_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setenv("SPECDEPLOY_VLLM_PYTHON", sys.executable)
    code = main(["compare-drafts", "--quiet", "--target", str(tmp_path / "missing"), "--draft", str(tmp_path)])
    assert code == 2
    assert "missing does not exist" in capsys.readouterr().err


def test_speed_options_default_and_parse() -> None:
    args = build_parser().parse_args(["compare-drafts", "--target", "t", "--draft", "a"])
    assert args.concurrency_levels == (1, 4, 16) and args.model_free == []
    args = build_parser().parse_args(
        ["compare-drafts", "--target", "t", "--model-free", "ngram", "--concurrency-levels", "8,1,8"]
    )
    assert args.concurrency_levels == (1, 8) and [d.method for d in args.model_free] == ["ngram"]
    assert (
        build_parser()
        .parse_args(["compare-drafts", "--target", "t", "--concurrency-levels", "none"])
        .concurrency_levels
        == ()
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--concurrency-levels", "0,4", "--concurrency-levels '0,4': expected integers from 1 to 256"),
        ("--concurrency-levels", "1,x", "--concurrency-levels '1,x': expected integers like 1,4,16"),
        ("--model-free", "eagle3", "--model-free 'eagle3': expected [LABEL=]METHOD"),
    ],
)
def test_bad_speed_options_are_refused_naming_the_option(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compare-drafts", "--target", "t", "--draft", "a", option, value])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_candidate_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare-drafts", "--target", "t"]) == 2
    assert "give at least one --draft or --model-free candidate" in capsys.readouterr().err
