#!/bin/bash
# Copy the wheel images/build.sh built from this repository into the image, beside its README.
set -euo pipefail
shopt -s nullglob
wheels=(files/hymy-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
	echo "02-install: want exactly one files/hymy-*.whl (images/build.sh puts it there), found ${#wheels[@]}" >&2
	exit 1
fi
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
install -d -m 755 "${ROOTFS_DIR}/opt/hymy"
rm -f "${ROOTFS_DIR}"/opt/hymy/hymy-*.whl
install -m 644 "${wheels[0]}" "${ROOTFS_DIR}/opt/hymy/"
install -m 644 ../../README.md "${ROOTFS_DIR}/opt/hymy/README.md"
