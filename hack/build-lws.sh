#!/usr/bin/env bash
# Builds the LeaderWorkerSet controller (sigs.k8s.io/lws, cmd/) from its Go module through the module proxy, once,
# into a cache folder keyed by the pinned version and the Go toolchain; later runs find the binary and return at
# once. Never downloads a prebuilt binary. The integration tier runs it against the local API server so that
# multi-node revisions (one LeaderWorkerSet group per replica) are created, scheduled and restarted by the real
# controller. A lock makes concurrent first runs build once.
# Cold build measured: 511 s wall on 2 cores shared with other work (193 s of CPU, 0.9 GB peak RSS), dependency
# downloads included (the lws module itself was already in the module cache); the binary is 53 MB.
#
# v0.9.0 is the newest tag whose source the proxy serves (it lists none; v0.7.0, v0.8.0 and v0.9.0 download; v0.10.0
# has .info and .mod but its .zip answers 403; v0.8.1, v0.9.1 and v0.11.0 do not exist). It is built against
# k8s.io/* v0.36.2 and controller-runtime v0.24.1, next to the control plane's v1.36.3.
#
# Prints the binary's path on its last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HERE/versions.env"

# shellcheck source=hack/cached-build.sh
source "$HERE/cached-build.sh"
cache_begin lws "lws-${LWS_VERSION}_go-$(go env GOVERSION)" lws-controller
log() { echo "[build-lws] $*" >&2; }
log "building LeaderWorkerSet module $LWS_VERSION into $DEST (first run only; minutes on 2 cores)"
# `go install M/cmd@V` asks the proxy for the module's version list (to look for a deprecation), which it refuses for
# this module; so download the module's source, copy it out of the read-only module cache, and build in it with its
# own go.mod and go.sum.
dir=$(go mod download -json "sigs.k8s.io/lws@$LWS_VERSION" | sed -nE 's/^\t"Dir": "(.*)",$/\1/p')
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  log "go mod download sigs.k8s.io/lws@$LWS_VERSION gave no source folder"
  exit 1
fi
rm -rf "$DEST/src"
cp -r "$dir" "$DEST/src"
chmod -R u+w "$DEST/src"
(cd "$DEST/src" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" ./cmd) >&2
cache_done
