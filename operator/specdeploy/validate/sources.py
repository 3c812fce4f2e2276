"""Where a model's metadata comes from: a local folder (a mounted volume) or a Hugging Face repository.

Both paths end in the same ``ModelFiles`` (``modelfiles``): repository-relative names mapped to local files, chosen
by the one allow-list in ``files``. Only this module decides which of the two a user meant; ``hub`` and
``modelfiles`` know nothing of it (so the imports run one way: sources -> hub -> modelfiles).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from specdeploy.validate.errors import CheckError
from specdeploy.validate.hub import fetch
from specdeploy.validate.modelfiles import ModelFiles, read_folder

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")


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
    return fetch(spec, revision=revision, cache_dir=cache_dir, timeout_s=timeout_s, deadline=deadline)
