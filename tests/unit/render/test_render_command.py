"""`specdeploy render -f FILE`: the children of every example, and clear errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from specdeploy.api.revision import revision_id
from specdeploy.cli import main
from specdeploy.render import render_all

from .specs import REPO, flags_with_values

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def render(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_there_are_examples_for_each_kind_of_speculation() -> None:
    methods = set()
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            methods.add(doc["spec"].get("speculation", {}).get("method", "draft_model"))
    assert {"draft_model", "ngram", "eagle3", "mtp"} <= methods
    assert (REPO / "examples" / "tiny.yaml").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_to_valid_children(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = render(capsys, "-f", str(path))
    assert code == 0, err
    assert "&id" not in out and "*id" not in out  # no YAML anchors for people to decode
    objects = list(yaml.safe_load_all(out))
    (sd,) = yaml.safe_load_all(path.read_text())
    kinds = [o["kind"] for o in objects]
    method = sd["spec"].get("speculation", {}).get("method", "draft_model")
    target = sd["spec"]["target"]
    gpus = target.get("tensorParallelSize", 1) * target.get("pipelineParallelSize", 1)
    server = "LeaderWorkerSet" if gpus > sd["spec"].get("serving", {}).get("gpusPerNode", 8) else "Deployment"
    assert kinds == ([] if method == "ngram" else ["Job"]) + [server, "Service"]
    if server == "Deployment":
        templates = [next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]]
    else:
        group = next(o for o in objects if o["kind"] == "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]
        templates = [group["leaderTemplate"], group["workerTemplate"]]
    for template in templates:
        (container,) = template["spec"]["containers"]
        assert [*container["command"], container["args"][0]] == ["vllm", "serve", sd["spec"]["target"]["model"]]
        dict(flags_with_values(container["args"][1:]))  # every flag a real vLLM option
    for obj in objects:
        assert obj["metadata"]["namespace"] == sd["metadata"].get("namespace", "default")
        assert len(obj["metadata"]["name"]) <= 63
        assert "ownerReferences" not in obj["metadata"]  # no uid in a manifest on disk


def test_uid_adds_owner_references_and_json_is_a_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load((REPO / "examples" / "tiny.yaml").read_text())
    doc["metadata"]["uid"] = "0c9a7f5e-aaaa-bbbb-cccc-ddddeeeeffff"
    file = tmp_path / "sd.yaml"
    file.write_text(yaml.safe_dump(doc))
    code, out, _ = render(capsys, "-f", str(file), "-o", "json")
    assert code == 0
    listing = json.loads(out)
    assert (listing["apiVersion"], listing["kind"]) == ("v1", "List")
    for obj in listing["items"]:
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "0c9a7f5e-aaaa-bbbb-cccc-ddddeeeeffff"


def test_several_documents_render_in_order_and_other_kinds_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ngram = (REPO / "examples" / "ngram.yaml").read_text()
    tiny = (REPO / "examples" / "tiny.yaml").read_text()
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: hf}\n"
    file = tmp_path / "many.yaml"
    file.write_text(f"{ngram}\n---\n{secret}---\n{tiny}")
    code, out, err = render(capsys, "-f", str(file))
    assert code == 0
    names = [(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(out)]
    assert names[0][0] == "Deployment" and names[0][1].startswith("qwen-7b-ngram-")  # <name>-<revision>
    assert names[1] == ("Service", "qwen-7b-ngram")
    assert names[2][0] == "Job" and names[2][1].startswith("tiny-validate-")
    assert "skipping kind 'Secret'" in err


def test_revision_in_names_matches_the_spec_hash(capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load((REPO / "examples" / "tiny.yaml").read_text())
    objects = render_all(doc)
    from specdeploy.api import SpeculativeDeploymentSpec

    revision = revision_id(SpeculativeDeploymentSpec.model_validate(doc["spec"]))
    assert objects[0]["metadata"]["name"] == f"tiny-validate-{revision}"
    assert all(o["metadata"]["labels"]["specdeploy.io/revision"] == revision for o in objects)


BAD = """\
apiVersion: specdeploy.io/v1alpha1
kind: SpeculativeDeployment
metadata: {name: bad}
spec:
  target: {model: "org/x; rm -rf /", tensorParallelSize: 0}
  draft: {model: org/d}
  serving: {extraArgs: ["--port=1"]}
"""


def test_invalid_manifest_exits_2_naming_file_document_and_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(BAD)
    code, out, err = render(capsys, "-f", str(file))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert all(line.startswith(f"specdeploy render: {file}: document 1 (bad): ") for line in lines)
    problems = [line.split("(bad): ", 1)[1] for line in lines]
    assert [p.split(":")[0] for p in problems[:2]] == ["spec.target.model", "spec.target.tensorParallelSize"]
    assert problems[2].startswith("spec.serving.extraArgs must not set --port (in any spelling)")
    assert "[extraArgs[0] is '--port=1']" in problems[2]
    assert "'org/x; rm -rf /'" in err


def test_missing_draft_is_reported_by_its_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "nodraft.yaml"
    file.write_text(
        "apiVersion: specdeploy.io/v1alpha1\nkind: SpeculativeDeployment\nmetadata: {name: x}\n"
        "spec: {target: {model: a/b}}\n"
    )
    code, _, err = render(capsys, "-f", str(file))
    assert code == 2
    assert f"{file}: document 1 (x): spec.draft is required unless spec.speculation.method is ngram" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [unclosed\n", "not valid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "no SpeculativeDeployment document found"),
        ("- just\n- a list\n", "expected a mapping"),
        (
            "apiVersion: specdeploy.io/v1alpha1\nkind: SpeculativeDeployment\nmetadata: {name: Bad_Name}\n"
            "spec: {target: {model: a/b}, speculation: {method: ngram}}\n",
            "metadata: ",
        ),
    ],
)
def test_unusable_files_exit_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    file = tmp_path / "in.yaml"
    file.write_text(content)
    code, out, err = render(capsys, "-f", str(file))
    assert (code, out) == (2, "")
    assert str(file) in err and message in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = render(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err and "nope.yaml" in err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO((REPO / "examples" / "ngram.yaml").read_text()))
    code, out, _ = render(capsys, "-f", "-")
    assert code == 0
    kinds: list[Any] = [o["kind"] for o in yaml.safe_load_all(out)]
    assert kinds == ["Deployment", "Service"]
