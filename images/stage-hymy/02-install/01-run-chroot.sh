#!/bin/bash
# Inside the image: Hymy's own virtual environment with the terminal's extra, from the wheel.
# pip fetches the dependencies from PyPI at build time; the terminal never installs anything itself.
set -euo pipefail
shopt -s nullglob
wheels=(/opt/hymy/hymy-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
	echo "02-install: want exactly one /opt/hymy/hymy-*.whl, found ${#wheels[@]}" >&2
	exit 1
fi
# System site packages: gpiozero finds Raspberry Pi OS's lgpio (python3-rpi-lgpio, stage2) there.
python3 -m venv --system-site-packages /opt/hymy/.venv
/opt/hymy/.venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check --upgrade "${wheels[0]}[kiosk]"
/opt/hymy/.venv/bin/hymy --help >/dev/null
/opt/hymy/.venv/bin/python -c 'import device.kiosk, device.firstboot'
