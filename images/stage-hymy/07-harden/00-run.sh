#!/bin/bash
# Hardening: SSH off unless IT's first-boot file asks, and then keys only; no passwords anywhere
# (01-user, pi-gen's stage2 locks root); a firewall that lets in only answers and lets out only
# what a terminal uses; security updates applied unattended, to the card beneath the overlay.
set -euo pipefail
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
install -m 644 files/sshd-hymy.conf "${ROOTFS_DIR}/etc/ssh/sshd_config.d/01-hymy.conf"
install -m 755 files/nftables.conf "${ROOTFS_DIR}/etc/nftables.conf"
install -d -m 755 "${ROOTFS_DIR}/etc/nftables.d"
install -m 644 files/52hymy-unattended-upgrades "${ROOTFS_DIR}/etc/apt/apt.conf.d/"
install -m 644 files/20auto-upgrades "${ROOTFS_DIR}/etc/apt/apt.conf.d/"
install -m 755 files/hymy-upgrade "${ROOTFS_DIR}/usr/local/sbin/"
install -d -m 755 "${ROOTFS_DIR}/etc/systemd/system/apt-daily-upgrade.service.d"
install -m 644 files/apt-daily-upgrade-hymy.conf "${ROOTFS_DIR}/etc/systemd/system/apt-daily-upgrade.service.d/hymy.conf"
install -d -m 755 "${ROOTFS_DIR}/etc/systemd/system/apt-daily-upgrade.timer.d"
install -m 644 files/apt-daily-upgrade-timer-hymy.conf "${ROOTFS_DIR}/etc/systemd/system/apt-daily-upgrade.timer.d/hymy.conf"

on_chroot <<- 'CHROOT'
	set -euo pipefail
	systemctl enable nftables.service apt-daily-upgrade.timer
	# hymy-upgrade refreshes the package lists itself, on the card; apt-daily would fill the RAM overlay.
	systemctl mask apt-daily.timer
	systemctl disable ssh.service
	# Raspberry Pi OS turns SSH on when a file named 'ssh' is on the boot partition: not here.
	if systemctl cat sshswitch.service >/dev/null 2>&1; then
		systemctl mask sshswitch.service
	fi
CHROOT
