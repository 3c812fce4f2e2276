#!/usr/bin/env bash
# Builds the local Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, kwok, helm) from Go modules through the module proxy, once, into a cache folder keyed by the pinned
# versions. Later runs find the binaries and return at once. Never downloads a prebuilt binary.
#
# Prints the bin folder on its last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HERE/versions.env"

KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_go-$(go env GOVERSION)"
CACHE_ROOT="${SPECDEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/specdeploy}"
DEST="$CACHE_ROOT/controlplane/$KEY"
BIN="$DEST/bin"
WANT=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm)

have_all() {
  for b in "${WANT[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

if have_all; then
  echo "$BIN"
  exit 0
fi

log() { echo "[build-controlplane] $*" >&2; }
mkdir -p "$BIN" "$DEST/src"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
START=$(date +%s)
log "building into $DEST (first run only; about 8 minutes on 2 cores, measured 453 s)"

# --- etcd: server/main.go is package main; a wrapper module requiring it builds without its replaces.
if [[ ! -x "$BIN/etcd" ]]; then
  log "etcd $ETCD_VERSION"
  d="$DEST/src/etcd"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  go mod init specdeploy.local/etcd-build >/dev/null 2>&1
  cat > tools.go <<GO
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  go mod tidy >&2
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

# --- kwok and helm: plain modules without replace directives.
if [[ ! -x "$BIN/kwok" ]]; then
  log "kwok $KWOK_VERSION"
  GOBIN="$DEST/src/gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  mv "$DEST/src/gobin/kwok" "$BIN/kwok"
fi
if [[ ! -x "$BIN/helm" ]]; then
  log "helm $HELM_VERSION"
  GOBIN="$DEST/src/gobin" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
  mv "$DEST/src/gobin/helm" "$BIN/helm"
fi

# --- Kubernetes: a wrapper module with the staging replaces read from k8s.io/kubernetes' own go.mod.
if [[ ! -x "$BIN/kube-apiserver" || ! -x "$BIN/kube-controller-manager" || ! -x "$BIN/kube-scheduler" || ! -x "$BIN/kubectl" ]]; then
  log "kubernetes $K8S_VERSION"
  d="$DEST/src/kubernetes"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  go mod init specdeploy.local/k8s-build >/dev/null 2>&1
  upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  minor_patch="${K8S_VERSION#v1.}"
  go_line=$(awk '$1=="go"{print $2; exit}' "$upstream_gomod")
  go mod edit -go="$go_line"
  grep -E '^godebug' "$upstream_gomod" >> go.mod || true
  go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
  # lines like "	k8s.io/api => ./staging/src/k8s.io/api"
  grep -oE 'k8s\.io/[A-Za-z0-9._-]+ => \./staging/src/k8s\.io/[A-Za-z0-9._-]+' "$upstream_gomod" | awk '{print $1}' | sort -u |
    while read -r m; do go mod edit -replace="$m=$m@v0.$minor_patch"; done
  cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy >&2
  major=$(echo "$K8S_VERSION" | sed -E 's/^v([0-9]+)\..*/\1/')
  minor=$(echo "$K8S_VERSION" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    LDF="$LDF -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean -X $p.buildDate=$now"
  done
  mkdir -p "$DEST/src/k8sbin"
  go build -trimpath -ldflags "$LDF" -o "$DEST/src/k8sbin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl >&2
  mv "$DEST/src/k8sbin/"* "$BIN/"
fi

have_all
log "done in $(( $(date +%s) - START )) s"
echo "$BIN"
