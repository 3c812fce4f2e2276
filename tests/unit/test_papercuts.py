"""Newcomer papercuts that a fresh clone shows at once: packaging metadata, one build-time figure, no paths outside
the repository in hack/."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it() -> None:
    """A TOML table makes setuptools print a deprecation banner on every `make install`; the SPDX string form needs
    setuptools 77 or later."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    setuptools = next(r for r in requires if r.startswith("setuptools"))
    match = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools.replace(" ", ""))
    assert match and int(match.group(1)) >= 77, setuptools


def test_the_control_plane_build_time_is_one_measured_figure() -> None:
    readme = (REPO / "README.md").read_text()
    script = (REPO / "hack" / "build-controlplane.sh").read_text()
    stated = re.search(r"takes\s+about\s+(\d+)\s+minutes\s+on\s+2\s+cores\s+\(measured:\s+(\d+)\s+s", readme)
    assert stated, "README states the first-build time as 'takes about N minutes on 2 cores (measured: S s'"
    minutes, seconds = int(stated.group(1)), int(stated.group(2))
    assert minutes == round(seconds / 60)
    logged = re.findall(r"about ([\d-]+) minutes on 2 cores, measured (\d+) s", script)
    assert logged == [(str(minutes), str(seconds))], f"hack/build-controlplane.sh says {logged}, README {minutes}"


def test_hack_names_no_path_outside_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files", "hack"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    outside = re.compile(r"/work/|\bshared/(reference|fixtures)\b|(\.\./){2,}")
    hits = [
        f"{name}:{number}: {line.strip()}"
        for name in files
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert not hits, hits
