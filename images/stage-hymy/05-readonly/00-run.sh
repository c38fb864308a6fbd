#!/bin/bash
# Read-only root, writable data. The root becomes an overlay on tmpfs (Raspberry Pi OS's way, as
# raspi-config's "overlay file system" does it: the overlayroot package's initramfs hook and
# overlayroot=tmpfs in cmdline.txt); device/firstboot.py adds that word after the first boot's setup,
# so cloud-init's, SSH's and our own first-boot writes land on the card. What must survive (votes,
# credentials, the journal, fake-hwclock's time) lives on a third partition, LABEL=hymy-data, made
# at first boot from the card's free space and mounted at /var/lib/hymy.
set -euo pipefail
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
install -m 755 files/hymy-data-partition "${ROOTFS_DIR}/usr/local/sbin/"
install -m 644 files/hymy-data-partition.service "${ROOTFS_DIR}/etc/systemd/system/"
install -d -m 755 "${ROOTFS_DIR}/etc/systemd/journald.conf.d"
install -m 644 files/journald-hymy.conf "${ROOTFS_DIR}/etc/systemd/journald.conf.d/hymy.conf"
install -d -m 700 "${ROOTFS_DIR}/var/lib/hymy"

# The root partition keeps the size pi-gen made it (read-only, it needs no room to grow): the rest
# of the card is for the data partition, so Raspberry Pi OS's resize-on-first-boot is off.
cmdline="${ROOTFS_DIR}/boot/firmware/cmdline.txt"
sed -i -e 's/ resize\b//; s/^resize //' "${cmdline}"

fstab="${ROOTFS_DIR}/etc/fstab"
if ! grep -q 'LABEL=hymy-data' "${fstab}"; then
	cat files/fstab-hymy >> "${fstab}"
fi

on_chroot <<- 'CHROOT'
	set -euo pipefail
	systemctl disable rpi-resize.service 2>/dev/null || true
	systemctl enable hymy-data-partition.service
CHROOT
