"""Third-party CustomResourceDefinitions from a Go module at a pinned version, cached, and applied to a cluster.

Why: prometheus-operator, KEDA and the Gateway API Inference Extension publish their CRDs inside their Go
modules, and the Go module proxy is the one source this project builds from (no GitHub, no prebuilt release
assets). ``go mod download -json M@V`` unpacks the module into the Go module cache and names its folder; the CRD
files under one folder of it are copied into ``<cache>/crds/<module>@<version>/<folder>/``, so that later runs
(and a cleaned module cache) find them without Go or the network. ``apply_crds`` server-side applies them and
waits until each is Established, as a user installing those projects would.

A test names what it wants once, e.g.::

    PROMETHEUS_OPERATOR = GoCrds("github.com/prometheus-operator/prometheus-operator",
                                 pinned("PROMETHEUS_OPERATOR_VERSION"), "example/prometheus-operator-crd",
                                 ("monitoring.coreos.com_podmonitors.yaml", ...))
    apply_crds(kubectl, PROMETHEUS_OPERATOR.files())
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from tests.harness.kubectl import Kubectl

REPO = Path(__file__).resolve().parents[2]
VERSIONS = REPO / "hack" / "versions.env"
_MODULE = re.compile(r"[a-z0-9][a-z0-9.-]*(/[A-Za-z0-9._~-]+)+\Z")
_VERSION = re.compile(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+incompatible)?\Z")
MAX_CRD_BYTES = 4 * 1024 * 1024  # the largest upstream CRD (prometheus-operator's Prometheus) is about 1 MB
DOWNLOAD_TIMEOUT = 600.0


class _CrdLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading a bare ``=`` as the string it is in YAML 1.2 (prometheus-operator's
    AlertmanagerConfig CRD has ``- =`` in an enum; YAML 1.1's "value" tag makes PyYAML refuse the file)."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


class GoModuleError(RuntimeError):
    """A module could not be downloaded, or the folder or file asked for is not in it; the message says which."""


def cache_root() -> Path:
    """``$SPECDEPLOY_CACHE``, else ``$XDG_CACHE_HOME/specdeploy``, else ``~/.cache/specdeploy`` (as in hack/)."""
    explicit = os.environ.get("SPECDEPLOY_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "specdeploy"


def pinned(variable: str, versions_file: Path = VERSIONS) -> str:
    """A version pinned in ``hack/versions.env`` (``NAME=value`` lines), so the tests and scripts share one pin."""
    for line in versions_file.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == variable:
            return value.strip().strip('"')
    raise GoModuleError(f"{variable} is not set in {versions_file}")


@dataclass(frozen=True)
class GoCrds:
    """The CRD files ``names`` (all ``*.yaml`` when empty) under ``folder`` of Go module ``module`` at ``version``."""

    module: str
    version: str
    folder: str
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _MODULE.match(self.module):
            raise GoModuleError(f"not a Go module path: {self.module!r}")
        if not _VERSION.match(self.version):
            raise GoModuleError(f"{self.module}: not a pinned semantic version: {self.version!r}")
        for part in (self.folder, *self.names):
            p = PurePosixPath(part)
            if p.is_absolute() or ".." in p.parts or not part:
                raise GoModuleError(f"{self.module}@{self.version}: {part!r} must be a relative path inside the module")

    @property
    def cache_dir(self) -> Path:
        """Where the copied files live: one folder per module, version and folder (the version is the key)."""
        return cache_root() / "crds" / f"{self.module}@{self.version}" / self.folder

    def files(self) -> list[Path]:
        """The cached CRD files, copied from the module on first use (one download; a lock for parallel runs).

        Each file is cached by name, so two selections from the same folder (KEDA's ScaledObject alone, say, and
        later all of KEDA's CRDs) each get exactly what they named."""
        dest = self.cache_dir
        marker = dest / ".all-copied"  # only for "every *.yaml": which files that is, is known after a download

        def cached() -> list[Path] | None:
            if self.names:
                paths = [dest / n for n in self.names]
                return paths if all(p.is_file() for p in paths) else None
            return sorted(p for p in dest.glob("*.yaml")) if marker.exists() else None

        found = cached()
        if found is None:
            dest.mkdir(parents=True, exist_ok=True)
            with (dest.parent / f".{dest.name}.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                found = cached()
                if found is None:
                    self._copy(module_dir(self.module, self.version) / self.folder, dest)
                    if not self.names:
                        marker.write_text(f"{self.module}@{self.version}\n")
                    found = cached()
        assert found is not None
        return found

    def _copy(self, source: Path, dest: Path) -> None:
        if not source.is_dir():
            raise GoModuleError(f"{self.module}@{self.version} has no folder {self.folder!r}")
        chosen = [source / n for n in self.names] if self.names else sorted(source.glob("*.yaml"))
        if not chosen:
            raise GoModuleError(f"{self.module}@{self.version}: no *.yaml under {self.folder!r}")
        for path in chosen:
            if not path.is_file():
                raise GoModuleError(f"{self.module}@{self.version}: {self.folder}/{path.name} is not in the module")
            if path.stat().st_size > MAX_CRD_BYTES:
                raise GoModuleError(f"{self.module}@{self.version}: {path.name} is over {MAX_CRD_BYTES} bytes")
            check_crd_file(path)
            tmp = dest / f".{path.name}.tmp"
            shutil.copyfile(path, tmp)
            tmp.replace(dest / path.name)


def module_dir(module: str, version: str) -> Path:
    """The unpacked module in the Go module cache (``go mod download -json``; the proxy, never a VCS)."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    go = shutil.which("go")
    if go is None:
        raise GoModuleError(f"go is not on PATH; it is needed once to download {module}@{version}")
    try:
        proc = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=DOWNLOAD_TIMEOUT,
            check=False,
            cwd=Path(os.sep),  # outside any module, so no go.mod of the caller's is consulted
        )
    except subprocess.TimeoutExpired:
        raise GoModuleError(f"go mod download {module}@{version}: no answer in {DOWNLOAD_TIMEOUT:.0f} s") from None
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or info.get("Error") or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip()[-2000:]
        raise GoModuleError(f"go mod download {module}@{version} failed: {detail}")
    return Path(info["Dir"])


def check_crd_file(path: Path) -> list[str]:
    """The CRD names in a file; a file holding anything but CustomResourceDefinitions is refused, named."""
    names: list[str] = []
    try:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=_CrdLoader) if d]
    except yaml.YAMLError as err:
        raise GoModuleError(f"{path}: not YAML: {err}") from None
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
            raise GoModuleError(f"{path}: expected only CustomResourceDefinitions, found {kind!r}")
        names.append(str(doc["metadata"]["name"]))
    return names


def apply_crds(kubectl: Kubectl, files: Iterable[Path], timeout: float = 120) -> list[str]:
    """Server-side apply the files (large schemas exceed the client-side annotation limit); wait until Established."""
    paths: Sequence[Path] = list(files)
    names = [n for p in paths for n in check_crd_file(p)]
    args = [a for p in paths for a in ("-f", str(p))]
    kubectl.run("apply", "--server-side", "--field-manager=specdeploy-tests", *args, timeout=timeout)
    for name in names:
        kubectl.wait_established(name, timeout=timeout)
    return names
