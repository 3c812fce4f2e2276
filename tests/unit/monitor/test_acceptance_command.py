"""``specdeploy acceptance`` through the real CLI entry point, on the real capture, saved pages and a live URL."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from specdeploy import cli

from .pages import REAL_PAGE, EngineCounts, V1Server, render_v0_page


def value_in_file(name: str, **labels: str) -> float:
    """Read one sample straight from the capture's text, independently of the parser under test."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", REAL_PAGE.read_text(), re.MULTILINE)
    assert match, name
    return float(match.group(1))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["acceptance", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_real_capture_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--output", "json", str(REAL_PAGE))
    assert code == 0
    data = json.loads(out)
    labels = {"engine": "0", "model_name": "tiny-target"}
    drafts = value_in_file("vllm:spec_decode_num_drafts_total", **labels)
    draft_tokens = value_in_file("vllm:spec_decode_num_draft_tokens_total", **labels)
    accepted = value_in_file("vllm:spec_decode_num_accepted_tokens_total", **labels)
    per_pos = [
        value_in_file("vllm:spec_decode_num_accepted_tokens_per_pos_total", position=str(i), **labels) for i in range(4)
    ]
    assert data == {
        "acceptance_rate": accepted / draft_tokens,
        "mean_accepted_length": 1 + accepted / drafts,
        "per_position": [p / drafts for p in per_pos],
        "drafts": drafts,
        "draft_tokens": draft_tokens,
        "accepted_tokens": accepted,
        "engine": "v1",
    }
    assert (data["drafts"], data["draft_tokens"]) == (189, 756)


def test_real_capture_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(REAL_PAGE))
    assert code == 0
    assert "acceptance rate:       0.0000 (0 of 756 draft tokens accepted)" in out
    assert "mean accepted length:  1.000 (tokens per target step over 189 drafts)" in out
    assert "since the server started" in out


def test_window_between_two_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = V1Server()
    before = tmp_path / "before.txt"
    after = tmp_path / "after.txt"
    before.write_text(server.advance_to({"0": EngineCounts(100, 400, 100, (60, 30, 10, 0))}))
    after.write_text(server.advance_to({"0": EngineCounts(300, 1200, 700, (260, 200, 140, 100))}))
    code, out, _ = run(capsys, "--previous", str(before), str(after), "--output", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["drafts"], data["draft_tokens"], data["accepted_tokens"]) == (200, 800, 600)
    assert data["acceptance_rate"] == 0.75
    assert data["mean_accepted_length"] == 4.0
    assert data["per_position"] == [1.0, 0.85, 0.65, 0.5]


def test_window_across_a_restart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tmp_path / "before.txt"
    after = tmp_path / "after.txt"
    before.write_text(V1Server().advance_to({"0": EngineCounts(1000, 4000, 3000)}))
    after.write_text(V1Server().advance_to({"0": EngineCounts(10, 40, 4)}))  # restarted server
    code, out, _ = run(capsys, "--previous", str(before), str(after), "--output", "json")
    assert code == 0
    assert json.loads(out)["acceptance_rate"] == 0.1


def test_counters_that_went_down_without_a_restart_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same start times, smaller counters: the pages are out of order or not one server's; no window is made up."""
    real = REAL_PAGE.read_text()
    drafted = 'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="tiny-target"} '
    assert drafted + "756.0" in real
    later, earlier = tmp_path / "later.txt", tmp_path / "earlier.txt"
    later.write_text(real)
    earlier.write_text(real.replace(drafted + "756.0", drafted + "600.0"))  # the _created lines stay as they were
    code, out, err = run(capsys, "--previous", str(later), str(earlier), "--output", "json")
    assert code == 2 and out == ""
    assert str(later) in err and str(earlier) in err
    assert "went down while its start time stayed the same" in err


def test_same_page_twice_has_no_window_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--previous", str(REAL_PAGE), str(REAL_PAGE))
    assert code == 1
    assert "no draft tokens between the two pages" in err


def test_page_without_speculation_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(line for line in REAL_PAGE.read_text().splitlines() if "spec_decode" not in line))
    code, out, err = run(capsys, str(plain))
    assert code == 1 and out == ""
    assert f"no spec-decode series in {plain}" in err


def test_v0_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "v0.txt"
    page.write_text(render_v0_page(0.5625, 0.638, 270000, 480000, 382800))
    code, out, _ = run(capsys, "--output", "json", str(page))
    assert code == 0
    data = json.loads(out)
    assert data["engine"] == "v0" and data["acceptance_rate"] == 0.5625 and data["draft_tokens"] is None
    code, out, _ = run(capsys, str(page))
    assert "V0 counters give no token counts" in out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read"),
        ('vllm:spec_decode_num_drafts_total{engine="0"} -1\n', "counters are finite and non-negative"),
    ],
)
def test_errors_exit_2_and_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, fragment: str
) -> None:
    path = tmp_path / "page.txt"
    if content is not None:
        path.write_text(content)
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert str(path) in err and fragment in err


def test_only_plain_http_urls(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "https://127.0.0.1:1/metrics")
    assert code == 2 and "only http:// URLs" in err


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = REAL_PAGE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_url_source(http_base: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--output", "json", f"{http_base}/metrics")
    assert code == 0 and json.loads(out)["draft_tokens"] == 756
    code, _, err = run(capsys, f"{http_base}/missing", "--timeout", "2")
    assert code == 2 and f"{http_base}/missing: HTTP 404" in err
