#!/bin/bash
# Time: NTP by systemd-timesyncd, and fake-hwclock so a Pi without a real-time clock starts near the
# time it stopped, not in 1970. The kiosk tells synchronised time from the kernel (adjtimex's
# STA_UNSYNC, which timesyncd clears once synchronised) or timesyncd's /run/systemd/timesync/synchronized
# (device/clock.py), and marks every vote with it.
set -euo pipefail
# shellcheck disable=SC2154 # ROOTFS_DIR is set by pi-gen's build.sh
install -d -m 755 "${ROOTFS_DIR}/etc/systemd/timesyncd.conf.d"
install -m 644 files/timesyncd-hymy.conf "${ROOTFS_DIR}/etc/systemd/timesyncd.conf.d/hymy.conf"
# fake-hwclock keeps its time on the data partition: on the read-only root it would never be saved.
install -m 644 files/fake-hwclock.default "${ROOTFS_DIR}/etc/default/fake-hwclock"
for unit in fake-hwclock-load.service fake-hwclock-save.service; do
	install -d -m 755 "${ROOTFS_DIR}/etc/systemd/system/${unit}.d"
	install -m 644 files/fake-hwclock-hymy.conf "${ROOTFS_DIR}/etc/systemd/system/${unit}.d/hymy.conf"
done

on_chroot <<- 'CHROOT'
	set -euo pipefail
	systemctl enable systemd-timesyncd.service fake-hwclock-load.service fake-hwclock-save.service fake-hwclock-save.timer
CHROOT
