"""Each image's ENTRYPOINT + CMD is a command the installed `specdeploy` actually accepts.

The images are `pip install` of this package into a venv, so running the same argv from the project venv is
what the container would do at start. A CMD that starts a server gets `--help` appended (exit 0 proves the
subcommand and every flag before it exist); it is also parsed by the real CLI parser, which rejects unknown
flags that `--help` would short-circuit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from specdeploy.cli import build_parser

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
SERVER_COMMANDS = {"run"}


def argv_of(image: str) -> list[str]:
    parser = DockerfileParser(str(REPO / "images" / image / "Dockerfile"))
    final = [i for i in parser.structure if i["instruction"] in ("ENTRYPOINT", "CMD")]
    entrypoint = next(json.loads(i["value"]) for i in reversed(final) if i["instruction"] == "ENTRYPOINT")
    cmd = next(json.loads(i["value"]) for i in reversed(final) if i["instruction"] == "CMD")
    return [*entrypoint, *cmd]


@pytest.mark.parametrize("image", ["operator", "validator"])
def test_image_command_runs_from_the_project_venv(image: str) -> None:
    argv = argv_of(image)
    assert argv[0] == "specdeploy"
    exe = VENV_BIN / "specdeploy"
    assert exe.exists(), f"{exe} missing: install the project (pip install -e .)"
    run_argv = [str(exe), *argv[1:]]
    if argv[1] in SERVER_COMMANDS:
        run_argv.append("--help")
    done = subprocess.run(run_argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(argv)} -> exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert f"specdeploy {argv[1]}" in done.stdout, done.stdout


@pytest.mark.parametrize("image", ["operator", "validator"])
def test_image_command_names_a_real_subcommand_with_real_flags(image: str) -> None:
    argv = argv_of(image)[1:]
    parser = build_parser()
    if "--help" not in argv:
        args = parser.parse_args(argv)
        assert args.command == argv[0]
        assert callable(args.func)
        return
    # A help CMD (the validator's: the Job passes the real arguments) need only name real things.
    (subcommands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert argv[0] in subcommands.choices
    known = subcommands.choices[argv[0]]._option_string_actions
    unknown = [a for a in argv[1:] if a.startswith("-") and a not in known]
    assert unknown == []


def test_operator_image_defaults_to_cluster_wide_standalone() -> None:
    args = build_parser().parse_args(argv_of("operator")[1:])
    assert args.all_namespaces is True
    assert args.peering is None
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    assert args.metrics_port == 9090
