#!/bin/bash
# The kiosk's own unprivileged user, and pi-gen's first user as a key-only administrator.
set -euo pipefail
# shellcheck disable=SC2154 # FIRST_USER_NAME and ROOTFS_DIR are set by pi-gen's build.sh
if [ "${FIRST_USER_NAME}" != "hymy-admin" ]; then
	echo "01-user: FIRST_USER_NAME must be hymy-admin (images/config): device/firstboot.py gives it the SSH keys" >&2
	exit 1
fi

on_chroot <<- 'CHROOT'
	set -euo pipefail
	for group in gpio input video render dialout; do
		groupadd -f -r "$group"
	done
	if ! id -u hymy >/dev/null 2>&1; then
		useradd --system --user-group --home-dir /var/lib/hymy --no-create-home --shell /usr/sbin/nologin hymy
	fi
	usermod --append --groups gpio,input,video,render,dialout hymy
	# No password at all ('*', not a locked hash): the only way in is an SSH key IT gives at first boot.
	usermod --password '*' hymy-admin
CHROOT

# Without a password, sudo must not ask for one; the account is reachable only by IT's SSH key.
install -m 440 files/010_hymy-admin-nopasswd "${ROOTFS_DIR}/etc/sudoers.d/"
