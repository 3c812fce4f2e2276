# Sourced by the build-*.sh scripts of third-party components (Prometheus, the LeaderWorkerSet controller): one
# binary built once from its Go module into a cache folder keyed by version and Go toolchain, under a lock so that
# concurrent first runs build once. Later runs print the binary's path and return at once.
#
#   cache_begin COMPONENT KEY BINARY   sets DEST and BIN; prints BIN and exits when it is built already
#   cache_done                         moves "$BIN.tmp" into place, drops "$DEST/src", prints BIN
# shellcheck shell=bash

cache_begin() {
  local component=$1 key=$2 binary=$3
  local root="${SPECDEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/specdeploy}"
  DEST="$root/$component/$key"
  BIN="$DEST/bin/$binary"
  if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
  fi
  mkdir -p "$DEST/bin"
  exec 9>"$DEST/.lock"
  flock 9
  if [[ -x "$BIN" ]]; then  # built by a concurrent run while this one waited for the lock
    echo "$BIN"
    exit 0
  fi
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  CACHE_START=$(date +%s)
}

cache_done() {
  mv "$BIN.tmp" "$BIN"
  rm -rf "$DEST/src"
  echo "[build-$(basename "$(dirname "$DEST")")] done in $(( $(date +%s) - CACHE_START )) s" >&2
  echo "$BIN"
}
