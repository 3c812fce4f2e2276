#!/usr/bin/env bash
# Builds Prometheus (the server) from its Go module through the module proxy, once, into a cache folder keyed by the
# pinned version and the Go toolchain; later runs find the binary and return at once. Never downloads a prebuilt
# binary. The integration tier runs it on 127.0.0.1 to evaluate the operator's PromQL and the chart's dashboard.
#
# Build choices: `remove_all_sd` leaves only static and file service discovery (the tests use file_sd; the cloud
# discovery plugins are most of the dependency tree), and the web UI's assets are not embedded (no `builtinassets`
# tag: the API, which is all the tests use, works without them). A lock makes concurrent first runs build once.
# Cold build measured: 879 s wall on 2 cores shared with other builds (220 s of CPU, 0.9 GB peak RSS), module
# downloads included; the binary is 52 MB.
#
# Prints the binary's path on its last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HERE/versions.env"

# shellcheck source=hack/cached-build.sh
source "$HERE/cached-build.sh"
cache_begin prometheus "prometheus-${PROMETHEUS_VERSION}_go-$(go env GOVERSION)" prometheus
log() { echo "[build-prometheus] $*" >&2; }
log "building Prometheus module $PROMETHEUS_VERSION into $DEST (first run only; 4-15 minutes on 2 cores)"
# The module's v0.3MM.P tags are Prometheus 3.MM.P; the version package shows that number in build_info.
release="3.$(echo "$PROMETHEUS_VERSION" | sed -E 's/^v0\.3([0-9][0-9])\.([0-9]+).*/\1.\2/' | sed -E 's/^0//')"
LDF="-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=module"
LDF="$LDF -X github.com/prometheus/common/version.Revision=$PROMETHEUS_VERSION"
GOBIN="$DEST/src/gobin" go install -trimpath -tags remove_all_sd -ldflags "$LDF" \
  "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" >&2
mv "$DEST/src/gobin/prometheus" "$BIN.tmp"
cache_done
