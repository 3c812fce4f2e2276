#!/usr/bin/env bash
# Bootstrap the two Debian bases of the images with mmdebstrap (from Debian's packages, no container registry) and
# import them into the builder's storage as local images; print their names (builder first, then runtime).
#
#   builder: python3, pip and venv — the Dockerfiles' builder stage builds the wheel and the venv with it
#   runtime: python3 only — the images' final stage; no pip, no compiler
#
# Both are cached by a version key (suite, packages, this recipe) under ~/.cache/specdeploy/images/bases/<key>/:
# a second run imports nothing and downloads nothing. The caller holds the cache lock (build.sh takes it).
set -euo pipefail
# shellcheck source=hack/images/common.sh
source "$(dirname "$0")/common.sh"
need_tools mmdebstrap buildah

key="$(base_key)"
dir="${IMAGES_CACHE}/bases/${key}"
builder_image="localhost/specdeploy-builder:${key}"
runtime_image="localhost/specdeploy-base:${key}"

# Docs, man pages and translations are left out of both bases (the python slim images leave them out too).
# The merged-usr hook makes bookworm's merged /usr with symlinks, as debootstrap does, instead of installing
# the usrmerge package and the full perl it needs (50 MB).
bootstrap() { # bootstrap PACKAGES OUT.tar [extra mmdebstrap options...]
  local packages="$1" out="$2"
  shift 2
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --include="${packages}" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Retries "5"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --setup-hook="mkdir -p '${dir}/debs' \"\$1\"/var/cache/apt/archives/" \
    --setup-hook="sync-in '${dir}/debs' /var/cache/apt/archives/" \
    "$@" \
    "${DEBIAN_SUITE}" "${out}.part" ${DEBIAN_MIRROR:+"${DEBIAN_MIRROR}"}
  mv "${out}.part" "${out}"
}

if [[ ! -f "${dir}/runtime.tar" ]]; then
  mkdir -p "${dir}"
  started=${SECONDS}
  echo "bootstrapping the Debian ${DEBIAN_SUITE} bases (key ${key}) with mmdebstrap..." >&2
  # The builder's packages are a superset: download once, keep the .debs for the runtime bootstrap.
  bootstrap "${BUILDER_PACKAGES}" "${dir}/builder.tar" \
    --customize-hook="sync-out /var/cache/apt/archives '${dir}/debs'" >&2
  bootstrap "${RUNTIME_PACKAGES}" "${dir}/runtime.tar" --skip=download/empty >&2
  rm -rf "${dir}/debs"
  echo "bases bootstrapped in $((SECONDS - started)) s" >&2
fi

import() { # import TAR IMAGE: a one-layer image of the tarball's root filesystem
  local tar="$1" image="$2" ctr
  if buildah_ inspect --type image "${image}" >/dev/null 2>&1; then
    return
  fi
  ctr="$(buildah_ from --pull=never scratch)"
  buildah_ add "${ctr}" "${tar}" / >/dev/null
  buildah_ config --cmd '["/bin/bash"]' --env LANG=C.UTF-8 \
    --label "org.opencontainers.image.description=Debian ${DEBIAN_SUITE} minbase (${tar##*/}) by mmdebstrap" "${ctr}"
  buildah_ commit --quiet --rm "${ctr}" "${image}" >/dev/null
  echo "imported ${image}" >&2
}
import "${dir}/builder.tar" "${builder_image}"
import "${dir}/runtime.tar" "${runtime_image}"

# Bases of other keys (an older recipe or package list) are never used again: drop their tarballs and images.
for old in "${IMAGES_CACHE}/bases"/*/; do
  old="$(basename "${old}")"
  if [[ "${old}" != "${key}" ]]; then
    rm -rf "${IMAGES_CACHE:?}/bases/${old}"
    buildah_ rmi "localhost/specdeploy-builder:${old}" "localhost/specdeploy-base:${old}" >/dev/null 2>&1 || true
  fi
done
echo "${builder_image}"
echo "${runtime_image}"
