#!/usr/bin/env bash
# `make images`: build images/operator and images/validator without a Docker engine.
#
# buildah (Debian's package) builds the unchanged Dockerfiles with chroot isolation into a private vfs storage,
# over Debian bases that base.sh bootstraps with mmdebstrap, passed as the Dockerfiles' BUILDER_IMAGE and
# BASE_IMAGE build arguments. pip inside the builder stage reaches PyPI through the host's network; the host's CA
# bundle is mounted for the build's RUN steps only (never committed into a layer).
#
# An image is rebuilt only when its inputs change: each carries a label with the hash of its Dockerfile, the
# package source and the base key, and a matching image is kept. Prints the two image names and their sizes.
#   hack/images/build.sh            build (or keep) both images
#   SPECDEPLOY_IMAGES_FORCE=1 ...   rebuild even when the inputs are unchanged
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=hack/images/common.sh
source hack/images/common.sh
need_tools buildah mmdebstrap

mkdir -p "${IMAGES_CACHE}"
exec 9>"${IMAGES_CACHE}/lock"
flock 9

bases="$(bash hack/images/base.sh)"
builder_image="${bases%%$'\n'*}"
runtime_image="${bases##*$'\n'}"
KEY_LABEL="dev.specdeploy.source-key"

source_key() { # source_key NAME: what the image is made from (the build context's files, this recipe, the bases)
  {
    echo "${builder_image} ${runtime_image} ${IMAGE_VERSION}"
    find "images/$1/Dockerfile" hack/images/build.sh pyproject.toml README.md .dockerignore operator -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}

# The host's CA bundle, for pip in the builder stage (a TLS-inspecting proxy's CA included); build time only.
volumes=()
if [[ -d /etc/ssl/certs ]]; then volumes+=(--volume /etc/ssl/certs:/etc/ssl/certs:ro); fi

build() { # build NAME IMAGE
  local name="$1" image="$2" key have started
  key="$(source_key "${name}")"
  have="$(buildah_ inspect --type image --format "{{index .OCIv1.Config.Labels \"${KEY_LABEL}\"}}" "${image}" \
    2>/dev/null || true)"
  if [[ "${have}" == "${key}" && -z "${SPECDEPLOY_IMAGES_FORCE:-}" ]]; then
    echo "${image}: up to date (inputs ${key})" >&2
    return
  fi
  started=${SECONDS}
  buildah_ bud --isolation chroot --pull=never --layers=false --quiet \
    --build-arg "BUILDER_IMAGE=${builder_image}" \
    --build-arg "BASE_IMAGE=${runtime_image}" \
    --build-arg "VERSION=${IMAGE_VERSION}" \
    --label "${KEY_LABEL}=${key}" \
    "${volumes[@]}" \
    -f "images/${name}/Dockerfile" -t "${image}" . >&2
  echo "${image}: built in $((SECONDS - started)) s" >&2
}

build operator "${OPERATOR_IMAGE}"
build validator "${VALIDATOR_IMAGE}"
# Earlier builds' images whose tag moved on, and the builder stages, take a full copy each under vfs.
buildah_ rmi --prune >/dev/null 2>&1 || true
for image in "${OPERATOR_IMAGE}" "${VALIDATOR_IMAGE}"; do
  echo "${image}  $(buildah_ images --noheading --format '{{.Size}}' "${image}")"
done
