"""The metadata files of one model as local paths, and reading them from a folder laid out like a Hub repository.

What both sources (a local folder, a Hugging Face download: see ``sources``) produce, and what the checks read.
Kept apart from ``sources`` so that ``hub``, which ends in a folder too, does not import the module that chooses
between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specdeploy.validate.errors import CheckError
from specdeploy.validate.files import FALLBACK_FOLDER, check_size, plan_files


@dataclass
class ModelFiles:
    """The metadata files of one model, as local paths keyed by their path inside the repository."""

    spec: str
    origin: str  # "local" or "hub"
    files: dict[str, Path] = field(default_factory=dict)
    revision: str | None = None
    commit: str | None = None
    bytes_read: int = 0
    bytes_downloaded: int = 0

    def get(self, name: str) -> Path | None:
        """The file ``name`` (top level, else under ``original/``), or None when the model lacks it."""
        return self.files.get(name) or self.files.get(f"{FALLBACK_FOLDER}/{name}")


def read_folder(folder: Path, *, spec: str, origin: str = "local") -> ModelFiles:
    """Select the allowed metadata files of a folder laid out like a Hugging Face repository."""
    if not folder.is_dir():
        raise CheckError("not_found", f"folder {spec} does not exist (or is not a directory)")
    listing = [p.name for p in folder.iterdir() if p.is_file()]
    original = folder / FALLBACK_FOLDER
    if original.is_dir():
        listing += [f"{FALLBACK_FOLDER}/{p.name}" for p in original.iterdir() if p.is_file()]
    plan = plan_files(listing)
    result = ModelFiles(spec=spec, origin=origin)
    for name in plan.paths:
        path = folder / name
        result.bytes_read += check_size(path, name)
        result.files[name] = path
    require_config(result)
    return result


def require_config(model: ModelFiles) -> None:
    """A model without config.json or params.json cannot be checked at all: say which files were found."""
    if model.get("config.json") is None and model.get("params.json") is None:
        found = ", ".join(sorted(model.files)) or "no metadata files"
        raise CheckError("missing_files", f"{model.spec} has no config.json (nor a native params.json); found {found}")
