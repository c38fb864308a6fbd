# shellcheck shell=bash
# The part of pi-gen's scripts/common that a stage's steps call, for the install test
# (tests/images/install_harness.py). Sourced by the harness before each step it runs; the
# functions are exported, as pi-gen exports them, so an NN-run.sh sees them too.
#
# Copied from RPi-Distro/pi-gen (arm64 branch, scripts/common) with two changes:
# - log() prints to stderr as well as the log file;
# - on_chroot() falls back to chroot(8) where capsh is missing. pi-gen's own call is
#   `capsh $CAPSH_ARG "--chroot=${ROOTFS_DIR}/" -- -e "$@"`: bash -e inside the root, script on stdin.

log() {
	date +"[%T] $*" | tee -a "${LOG_FILE:-/dev/null}" >&2
}
export -f log

on_chroot() {
	if ! mount | grep -q "$(realpath "${ROOTFS_DIR}"/proc)"; then
		mount -t proc proc "${ROOTFS_DIR}/proc"
	fi

	if ! mount | grep -q "$(realpath "${ROOTFS_DIR}"/dev)"; then
		mount --bind /dev "${ROOTFS_DIR}/dev"
	fi

	if ! mount | grep -q "$(realpath "${ROOTFS_DIR}"/dev/pts)"; then
		mount --bind /dev/pts "${ROOTFS_DIR}/dev/pts"
	fi

	if ! mount | grep -q "$(realpath "${ROOTFS_DIR}"/sys)"; then
		mount --bind /sys "${ROOTFS_DIR}/sys"
	fi

	if ! mount | grep -q "$(realpath "${ROOTFS_DIR}"/run)"; then
		mount -t tmpfs tmpfs "${ROOTFS_DIR}/run"
	fi

	if ! mount | grep -q "$(realpath "${ROOTFS_DIR}"/tmp)"; then
		mount -t tmpfs tmpfs "${ROOTFS_DIR}/tmp"
	fi

	if command -v capsh >/dev/null 2>&1; then
		# shellcheck disable=SC2086
		capsh $CAPSH_ARG "--chroot=${ROOTFS_DIR}/" -- -e "$@"
	else
		chroot "${ROOTFS_DIR}/" /bin/bash -e "$@"
	fi
}
export -f on_chroot

copy_previous() {
	if [ ! -d "${PREV_ROOTFS_DIR}" ]; then
		echo "Previous stage rootfs not found"
		false
	fi
	mkdir -p "${ROOTFS_DIR}"
	rsync -aHAXx --exclude var/cache/apt/archives "${PREV_ROOTFS_DIR}/" "${ROOTFS_DIR}/"
}
export -f copy_previous
