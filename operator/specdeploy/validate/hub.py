"""Fetch a model's metadata (never its weights) from the Hugging Face Hub, or from the local HF cache offline.

The repository is listed first (``model_info`` with file sizes), so absent optional files are skipped and
oversized ones are refused before a byte is downloaded; then each allowed file is fetched with
``hf_hub_download`` pinned to the listed commit. ``HF_TOKEN``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and the cache
location (``HF_HOME``/``HF_HUB_CACHE`` or ``--cache-dir``) are honoured as every HF tool honours them. Library
errors become ``CheckError`` kinds with a message a user can act on.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from specdeploy.validate.errors import CheckError
from specdeploy.validate.files import (
    CONFIG_FILES,
    FALLBACK_FOLDER,
    PARAMS_FILE,
    check_size,
    is_allowed,
    plan_files,
    size_cap,
)
from specdeploy.validate.modelfiles import ModelFiles, read_folder, require_config

_COMMIT = re.compile(r"^[0-9a-f]{40}$")

# What an offline run may read from a cached snapshot: the same allow-list as ``files.is_allowed``.
_OFFLINE_PATTERNS = [
    *CONFIG_FILES,
    PARAMS_FILE,
    "tokenizer.json",
    "tekken.json",
    "tokenizer.model",
    "tokenizer.model.v*",
    "*.tiktoken",
    f"{FALLBACK_FOLDER}/{PARAMS_FILE}",
    f"{FALLBACK_FOLDER}/tokenizer.model",
]


def fetch(
    repo_id: str, *, revision: str | None, cache_dir: str | None, timeout_s: float, deadline: float | None = None
) -> ModelFiles:
    """Fetch the allowed metadata files of ``repo_id`` at ``revision`` into the HF cache and return them."""
    from huggingface_hub import constants

    offline = getattr(constants, "is_offline_mode", None)  # a function since huggingface_hub 1.x
    if offline() if callable(offline) else constants.HF_HUB_OFFLINE:
        return _from_cache(repo_id, revision=revision, cache_dir=cache_dir, reason="HF_HUB_OFFLINE is set")
    token = os.environ.get("HF_TOKEN") or None
    try:
        info = _model_info(repo_id, revision=revision, token=token, timeout_s=_remaining(timeout_s, deadline))
    except CheckError as exc:
        if exc.kind not in ("network", "timeout"):
            raise
        try:  # the Hub is unreachable: a cached snapshot of the same revision is as good
            return _from_cache(repo_id, revision=revision, cache_dir=cache_dir, reason=exc.message)
        except CheckError:
            raise exc from None
    commit = info.sha if isinstance(info.sha, str) and _COMMIT.match(info.sha) else (revision or "main")
    sizes = {s.rfilename: s.size for s in (info.siblings or []) if is_allowed(s.rfilename)}
    plan = plan_files(sizes)
    result = ModelFiles(spec=repo_id, origin="hub", revision=revision or "main", commit=commit)
    for name in plan.paths:
        size = sizes.get(name)
        if size is not None and size > size_cap(name):
            raise CheckError(
                "oversized",
                f"{repo_id}: {name} is {size / 1048576:.1f} MiB, more than the "
                f"{size_cap(name) // 1048576} MiB allowed; refusing to download it",
            )
        path, downloaded = _download(
            repo_id,
            name,
            revision=revision or "main",
            cache_dir=cache_dir,
            token=token,
            timeout_s=_remaining(timeout_s, deadline),
        )
        if _COMMIT.match(commit) and path.parents[name.count("/")].name != commit:
            raise CheckError(
                "network", f"{repo_id} changed while its files were being fetched (commit {commit}); retry"
            )
        nbytes = check_size(path, name)
        result.files[name] = path
        result.bytes_read += nbytes
        result.bytes_downloaded += nbytes if downloaded else 0
    require_config(result)
    return result


def _remaining(timeout_s: float, deadline: float | None) -> float:
    if deadline is None:
        return timeout_s
    left = deadline - time.monotonic()
    if left <= 0:
        raise CheckError("timeout", "ran out of time while fetching metadata from the Hub")
    return min(timeout_s, left)


def _model_info(repo_id: str, *, revision: str | None, token: str | None, timeout_s: float) -> Any:
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(repo_id, revision=revision, files_metadata=True, token=token, timeout=timeout_s)
    except Exception as exc:
        raise _translate(exc, repo_id, revision=revision, token=token) from exc


def _download(
    repo_id: str, name: str, *, revision: str, cache_dir: str | None, token: str | None, timeout_s: float
) -> tuple[Path, bool]:
    """Download (or reuse from the cache) one file; returns its path and whether bytes crossed the network.

    The download names the revision (not the listed commit) so the cache records ``refs/<revision>`` and a
    later offline run can resolve it; the caller checks the file came from the listed commit.
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision)
    constants.HF_HUB_DOWNLOAD_TIMEOUT = max(1, int(timeout_s))  # per-read timeout of the GET
    try:
        path = hf_hub_download(
            repo_id, name, revision=revision, cache_dir=cache_dir, token=token, etag_timeout=timeout_s
        )
    except Exception as exc:
        raise _translate(exc, repo_id, revision=revision, token=token, filename=name) from exc
    return Path(str(path)), not isinstance(cached, str)


def _from_cache(repo_id: str, *, revision: str | None, cache_dir: str | None, reason: str) -> ModelFiles:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=True,
            allow_patterns=_OFFLINE_PATTERNS,
        )
    except Exception as exc:
        where = cache_dir or "the Hugging Face cache (HF_HOME / HF_HUB_CACHE)"
        raise CheckError(
            "not_found",
            f"{repo_id}@{revision or 'main'} is not in {where} and the Hub cannot be used ({reason}); "
            "pre-fetch its config and tokenizer files or allow network access",
        ) from exc
    result = read_folder(Path(folder), spec=repo_id, origin="hub-cache")
    result.revision = revision or "main"
    result.commit = Path(folder).name
    return result


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _mro_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _translate(
    exc: BaseException, repo_id: str, *, revision: str | None, token: str | None, filename: str | None = None
) -> CheckError:
    """Map a huggingface_hub / HTTP client exception to a CheckError a user can act on."""
    names = _mro_names(exc)
    status = _status(exc)
    what = f"{repo_id}/{filename}" if filename else repo_id
    token_hint = "HF_TOKEN is set but this account has no access" if token else "set HF_TOKEN"
    if "LocalEntryNotFoundError" in names:
        cause = exc.__cause__ or exc.__context__
        if cause is not None and cause is not exc:
            return _translate(cause, repo_id, revision=revision, token=token, filename=filename)
        return CheckError("network", f"{what}: not in the cache and the Hub cannot be reached")
    if "GatedRepoError" in names:
        return CheckError(
            "auth",
            f"{repo_id} is a gated repository: {token_hint}; accept the licence on "
            f"https://huggingface.co/{repo_id} with the account whose token is in HF_TOKEN",
        )
    if "RevisionNotFoundError" in names:
        return CheckError("not_found", f"{repo_id} has no revision {revision!r} (branch, tag or commit)")
    if "EntryNotFoundError" in names:
        return CheckError("missing_files", f"{what} was listed but cannot be downloaded (not found)")
    if status in (401, 403) or "RepositoryNotFoundError" in names:
        if status == 404:
            return CheckError("not_found", f"repository {repo_id} does not exist on the Hub (check the spelling)")
        return CheckError(
            "auth",
            f"{repo_id}: access denied (HTTP {status}); the repository is private, gated or missing: "
            f"{token_hint} / accept the licence on https://huggingface.co/{repo_id}",
        )
    if "OfflineModeIsEnabled" in names:
        return CheckError("network", f"{what}: the Hub cannot be reached because HF_HUB_OFFLINE is set")
    if names & {"TimeoutException", "Timeout", "TimeoutError"}:
        return CheckError("timeout", f"{what}: the Hub did not answer in time ({type(exc).__name__})")
    if status == 429:
        return CheckError("network", f"{what}: rate limited by the Hub (HTTP 429); retry later or set HF_TOKEN")
    if status is not None and status >= 500:
        return CheckError("network", f"{what}: the Hub answered HTTP {status}; retry later")
    if status is not None:  # before the transport check: HTTP errors of requests are OSErrors too
        return CheckError("network", f"{what}: unexpected HTTP {status} from the Hub")
    if names & {"TransportError", "NetworkError", "ConnectError", "ConnectionError", "OSError"}:
        return CheckError("network", f"{what}: cannot reach the Hub ({type(exc).__name__}: {exc})")
    return CheckError("network", f"{what}: {type(exc).__name__}: {exc}")
