# Sourced by hack/images/*.sh: where the daemonless builder keeps its images and how it is invoked.
#
# Everything lives under one cache folder (like the control plane's): the bootstrapped Debian bases by version key,
# and a private containers-storage (overlay when the sandbox allows the mount, else vfs: plain directories, no
# mounts, works in any container as root). buildah builds with chroot isolation (no user namespace, no OCI
# runtime); podman runs the result with runc, cgroupfs and explicit rlimits (the sandbox refuses raising
# RLIMIT_NOFILE to podman's default, and crun refuses its hybrid cgroup layout).
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts and tests that source this file

IMAGES_CACHE="${SPECDEPLOY_IMAGES_CACHE:-${HOME}/.cache/specdeploy/images}"
# overlay where this kernel and sandbox allow an overlay mount (a container starts in about 1 s), else vfs (every
# container copies the whole image first: about 30 s for the validator here). SPECDEPLOY_IMAGES_DRIVER=vfs|overlay
# forces one.
overlay_mounts() {
  local dir ok=1
  dir="$(mktemp -d)" || return 1
  mkdir -p "${dir}"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work" \
    "${dir}/merged" 2>/dev/null; then
    umount "${dir}/merged" && ok=0
  fi
  rm -rf "${dir}"
  return "${ok}"
}
IMAGES_DRIVER="${SPECDEPLOY_IMAGES_DRIVER:-auto}"
if [[ "${IMAGES_DRIVER}" == auto ]]; then
  if overlay_mounts; then IMAGES_DRIVER=overlay; else IMAGES_DRIVER=vfs; fi
fi
# One storage per driver.
IMAGES_SUFFIX=""
if [[ "${IMAGES_DRIVER}" != vfs ]]; then IMAGES_SUFFIX="-${IMAGES_DRIVER}"; fi
IMAGES_STORAGE=(
  --root "${IMAGES_CACHE}/storage${IMAGES_SUFFIX}"
  --runroot "${IMAGES_CACHE}/run${IMAGES_SUFFIX}"
  --storage-driver "${IMAGES_DRIVER}"
)
# The Debian release of both bases; python3 there is 3.11, the minor version of the Dockerfiles' default base.
DEBIAN_SUITE="${SPECDEPLOY_DEBIAN_SUITE:-bookworm}"
# Empty: mmdebstrap's default Debian mirror, with the suite's -updates and -security archives added.
DEBIAN_MIRROR="${SPECDEPLOY_DEBIAN_MIRROR:-}"
# python-is-python3: the Dockerfiles call `python`, and the venv's interpreter link points at /usr/bin/python.
RUNTIME_PACKAGES="python3,python-is-python3,ca-certificates"
BUILDER_PACKAGES="${RUNTIME_PACKAGES},python3-pip,python3-venv"
IMAGE_VERSION="${SPECDEPLOY_IMAGE_VERSION:-0.1.0}"
OPERATOR_IMAGE="localhost/specdeploy/operator:${IMAGE_VERSION}"
VALIDATOR_IMAGE="localhost/specdeploy/validator:${IMAGE_VERSION}"

buildah_() { buildah "${IMAGES_STORAGE[@]}" "$@"; }
podman_() { podman "${IMAGES_STORAGE[@]}" --runtime runc --cgroup-manager cgroupfs "$@"; }

# The version key of the bases: the suite, the package lists and the bootstrap recipe (base.sh itself).
base_key() {
  local recipe
  recipe="$(cat "$(dirname "${BASH_SOURCE[0]}")/base.sh")"
  printf 'debian-%s_%s\n' "${DEBIAN_SUITE}" \
    "$(printf '%s\n%s\n%s\n%s\n' "${DEBIAN_MIRROR}" "${RUNTIME_PACKAGES}" "${BUILDER_PACKAGES}" "${recipe}" \
      | sha256sum | cut -c1-12)"
}

need_tools() {
  local tool missing=()
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
  done
  if ((${#missing[@]})); then
    echo "missing: ${missing[*]} (apt-get install -y buildah mmdebstrap podman runc)" >&2
    return 1
  fi
}
