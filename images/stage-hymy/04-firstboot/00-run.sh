#!/bin/bash
# First boot: device/firstboot.py reads IT's files on the boot partition (hymy-enrol.toml, the CA,
# Imager's user-data and network-config); hymy-enrolled.path takes the secret out once enrolled.
set -euo pipefail
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
install -m 644 files/hymy-firstboot.service "${ROOTFS_DIR}/etc/systemd/system/"
install -m 644 files/hymy-enrolled.path "${ROOTFS_DIR}/etc/systemd/system/"
install -m 644 files/hymy-enrolled.service "${ROOTFS_DIR}/etc/systemd/system/"
# The host name comes from the Pi's serial (device/firstboot.py), not from Imager's user-data.
install -d -m 755 "${ROOTFS_DIR}/etc/cloud/cloud.cfg.d"
install -m 644 files/99-hymy.cfg "${ROOTFS_DIR}/etc/cloud/cloud.cfg.d/"

on_chroot <<- 'CHROOT'
	set -euo pipefail
	systemctl enable hymy-firstboot.service hymy-enrolled.path
CHROOT
