"""Where a model's metadata comes from: a local folder (a mounted volume) or a Hugging Face repository.

Both paths end in the same ``ModelFiles``: repository-relative names mapped to local files, chosen by the one
allow-list in ``files``. Only this module decides which of the two a user meant.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from specdeploy.validate.errors import CheckError
from specdeploy.validate.files import FALLBACK_FOLDER, check_size, plan_files

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")


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


def is_local(spec: str) -> bool:
    """True when ``spec`` names a folder on disk rather than a Hugging Face repo id."""
    return spec.startswith(("/", ".", "~")) or os.path.isdir(spec)


def resolve(
    spec: str, *, revision: str | None, cache_dir: str | None, timeout_s: float, deadline: float | None = None
) -> ModelFiles:
    """Locate or fetch the metadata of ``spec`` (a folder path or ``owner/name`` repo id)."""
    if is_local(spec):
        if revision:
            raise CheckError("usage", f"--revision {revision!r} makes no sense for the local folder {spec}")
        return read_folder(Path(os.path.expanduser(spec)), spec=spec)
    if not _REPO_ID.match(spec):
        raise CheckError(
            "usage", f"{spec!r} is neither an existing folder nor a Hugging Face repo id like 'owner/name'"
        )
    from specdeploy.validate.hub import fetch

    return fetch(spec, revision=revision, cache_dir=cache_dir, timeout_s=timeout_s, deadline=deadline)


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
