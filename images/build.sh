#!/usr/bin/env bash
# Build a Hymy terminal SD-card image: the wheel from this repository, then pi-gen with images/config
# (stages 0-2, Raspberry Pi OS Lite, then images/stage-hymy). See images/README.md.
# Usage: sudo images/build.sh PI_GEN_DIR      (or PI_GEN_DIR=... sudo -E images/build.sh)
# PI_GEN_DIR is a checkout of https://github.com/RPi-Distro/pi-gen on its arm64 branch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "${here}")"
stage="${here}/stage-hymy"

die() {
	echo "images/build.sh: $*" >&2
	exit 1
}

pigen="${1:-${PI_GEN_DIR:-}}"
[ -n "${pigen}" ] || die "usage: sudo images/build.sh PI_GEN_DIR (a pi-gen checkout, arm64 branch)"
[ -x "${pigen}/build.sh" ] || die "${pigen} is not a pi-gen checkout (no build.sh)"
pigen="$(cd "${pigen}" && pwd)"
grep -q '^export ARCH=arm64' "${pigen}/build.sh" || die "${pigen} is not pi-gen's arm64 branch: git -C ${pigen} checkout arm64"
[ "$(id -u)" -eq 0 ] || die "pi-gen needs root: sudo images/build.sh ${pigen}"

# The wheel, built as the user who ran sudo so the repository gets no root-owned build files.
wheels="${stage}/02-install/files"
rm -f "${wheels}"/hymy-*.whl
as_user=()
if [ -n "${SUDO_USER:-}" ] && [ "${SUDO_USER}" != root ]; then
	as_user=(sudo -u "${SUDO_USER}" --)
fi
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
if [ "${#as_user[@]}" -gt 0 ]; then
	chown "${SUDO_USER}" "${tmp}"
fi
"${as_user[@]}" python3 -m pip wheel --no-deps --disable-pip-version-check --wheel-dir "${tmp}" "${repo}"
cp "${tmp}"/hymy-*.whl "${wheels}/"
echo "images/build.sh: wheel $(basename "${wheels}"/hymy-*.whl)"

# Only our stage exports an image (pi-gen's own mechanism: SKIP_IMAGES beside stage2's EXPORT_IMAGE).
touch "${pigen}/stage2/SKIP_IMAGES"

export HYMY_STAGE_DIR="${stage}"
# pi-gen will not skip its first-boot user rename without a password; 01-user removes this one.
FIRST_USER_PASS="$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
export FIRST_USER_PASS

cd "${pigen}"
./build.sh -c "${here}/config"
echo "images/build.sh: the image is in ${pigen}/deploy/"
