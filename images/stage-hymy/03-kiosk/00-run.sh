#!/bin/bash
# The kiosk: its unit (one source: the repository's device/systemd), its settings, and a quiet,
# blank-free, cursor-free screen that belongs to the kiosk alone (KMS/DRM, no desktop, no getty).
set -euo pipefail
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
install -m 644 ../../../device/systemd/hymy-kiosk.service "${ROOTFS_DIR}/etc/systemd/system/"
install -d -m 755 "${ROOTFS_DIR}/etc/hymy"
install -m 644 files/kiosk.toml "${ROOTFS_DIR}/etc/hymy/kiosk.toml"

# cmdline.txt is one line. Boot messages go to tty3, not the kiosk's screen; no blanking, no cursor.
cmdline="${ROOTFS_DIR}/boot/firmware/cmdline.txt"
sed -i -e 's/console=tty1/console=tty3/' "${cmdline}"
for arg in consoleblank=0 vt.global_cursor_default=0 logo.nologo quiet loglevel=3; do
	if ! grep -qE "(^| )${arg//./\\.}( |$)" "${cmdline}"; then
		sed -i -e "1 s/\$/ ${arg}/" "${cmdline}"
	fi
done

on_chroot <<- 'CHROOT'
	set -euo pipefail
	systemctl enable hymy-kiosk.service
	# A login prompt on tty1 would sit under the kiosk's picture: IT logs in over SSH, if at all.
	systemctl mask getty@tty1.service
CHROOT
