"""The images tier: both images built by `make images` (buildah, no Docker engine) and run with podman.

The build is cached by input hash (hack/images/build.sh), so a warm session only checks the labels. Containers run
the way the cluster runs them: the image's own user, a read-only root filesystem with an emptyDir-like /tmp, no
capabilities, the host network (the local API server listens on 127.0.0.1).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 1800  # cold: two mmdebstrap bootstraps and two pip installs from PyPI


def _common(expr: str) -> list[str]:
    """Values from hack/images/common.sh, so the tests use the builder's storage and runtime settings."""
    out = subprocess.run(
        ["bash", "-c", f"source hack/images/common.sh && printf '%s\\n' {expr}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


@dataclass(frozen=True)
class Podman:
    """podman with the builder's storage; ``run`` adds what every container of the tier gets."""

    prefix: tuple[str, ...]

    def run(
        self,
        image: str,
        args: Sequence[str],
        *,
        options: Sequence[str] = (),
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, "run", "--rm", *self.hardened(), *options, image, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @staticmethod
    def hardened() -> list[str]:
        """As the chart and the validation Job run a container: a read-only root (podman's own writable /tmp,
        /run and /var/tmp turned off: the caller mounts the pod's emptyDir), no capabilities, no privilege
        escalation; the host network. The sandbox this runs in refuses podman's default rlimits, hence explicit
        lower ones."""
        return [
            "--pull=never",
            "--network=host",
            "--read-only",
            "--read-only-tmpfs=false",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--ulimit=nofile=4096:4096",
            "--ulimit=nproc=4096:4096",
        ]


@dataclass(frozen=True)
class Images:
    operator: str
    validator: str
    sizes: dict[str, str]


@pytest.fixture(scope="session")
def podman() -> Podman:
    storage = _common('"${IMAGES_STORAGE[@]}"')
    return Podman(prefix=("podman", *storage, "--runtime", "runc", "--cgroup-manager", "cgroupfs"))


@pytest.fixture(scope="session")
def images() -> Images:
    """`make images` (hack/images/build.sh): builds what changed, prints each image with its size."""
    done = subprocess.run(
        ["bash", "hack/images/build.sh"], check=False, cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    if done.returncode != 0:
        pytest.fail(f"hack/images/build.sh failed ({done.returncode}):\n{done.stderr[-6000:]}")
    sizes = dict(line.split(maxsplit=1) for line in done.stdout.splitlines() if line.strip())
    operator, validator = _common('"${OPERATOR_IMAGE}" "${VALIDATOR_IMAGE}"')
    assert set(sizes) == {operator, validator}, done.stdout
    print(f"\nimage sizes: {sizes}")
    return Images(operator=operator, validator=validator, sizes=sizes)
