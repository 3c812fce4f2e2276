"""The validator never prints or reports HF_TOKEN, even when the Hub rejects it and echoes it back.

A hostile (or merely careless) Hub on 127.0.0.1 answers every request with an error whose headers and body repeat
the Authorization header it received, or redirects to a URL carrying it. The validator runs as the Job runs it
(``python -m specdeploy.validate`` with HF_TOKEN in its environment); its stdout, stderr and report file are
searched for the token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.echohub import MODES, EchoHub

TOKEN = "hf_ReliabilityCanary0123456789abcdefXYZ"


@pytest.fixture(params=MODES)
def hub(request: pytest.FixtureRequest) -> Iterator[EchoHub]:
    h = EchoHub(str(request.param))
    yield h
    h.close()


def test_a_rejected_token_is_never_printed_or_reported(hub: EchoHub, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "home"),
        HF_HUB_CACHE=str(tmp_path / "hub"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_TOKEN=TOKEN,
    )
    report_file = tmp_path / "termination-log"
    argv = ["--target", "meta-llama/Llama-3.1-70B-Instruct", "--draft", "meta-llama/Llama-3.2-1B-Instruct"]
    outputs = []
    for output in ("json", "text"):
        proc = subprocess.run(
            [sys.executable, "-m", "specdeploy.validate", *argv, "--output", output, "--report-file", str(report_file),
             "--timeout", "20"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stdout + proc.stderr
        outputs += [proc.stdout, proc.stderr, report_file.read_text()]
    report = json.loads(outputs[0])
    print(f"\n{hub.mode}: {report['error']['kind']}: {report['error']['message'][:150]}")
    assert any(TOKEN in seen for seen in hub.seen_tokens), "the token was never sent: the test proves nothing"
    leaked = [text for text in outputs if TOKEN in text or TOKEN[3:] in text]
    assert not leaked, f"{hub.mode}: the token appears in the validator's output: {leaked[0][:500]}"
    assert report["error"]["kind"] in ("auth", "network", "not_found", "timeout")


def test_any_text_that_reaches_the_report_has_the_token_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever the origin of a message (here a path that happens to contain the token), it is redacted."""
    from specdeploy.validate.cli import main
    from specdeploy.validate.errors import REDACTED

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    report_file = tmp_path / "report.json"
    code = main(["--target", f"/nonexistent/{TOKEN}/model", "--draft", "/nonexistent/draft", "--output", "json",
                 "--report-file", str(report_file)])  # fmt: skip
    out = capsys.readouterr()
    assert code == 2
    assert TOKEN not in out.out + out.err + report_file.read_text()
    assert REDACTED in json.loads(out.out)["error"]["message"]
