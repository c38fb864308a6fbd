#!/bin/bash
# pi-gen runs this before the stage's steps: start from the previous stage's root (stage2, Lite).
set -euo pipefail
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
