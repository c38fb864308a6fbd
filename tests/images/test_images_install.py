"""The image's install test (issue 14): the pi-gen stage's steps in a debootstrapped Debian Trixie root, then the kiosk.

Opt-in: it needs root, debootstrap and the network to the Debian mirror and PyPI, and takes minutes
(about 25 s with the cached base root, about 1.5 min without). Run it with

    HYMY_IMAGE_TEST=1 .venv/bin/python -m pytest tests/images/test_images_install.py

The harness (tests/images/install_harness.py, also runnable by hand) does the work and writes a
report; this test runs it once and checks the report: every step ran, the hymy user and its groups,
the installed command, and the kiosk, started from its unit's command line, saying READY=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import install_harness as harness

WORK = Path(os.environ.get("HYMY_IMAGE_TEST_WORK", "/var/tmp/hymy-image-test"))

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("HYMY_IMAGE_TEST") != "1",
        reason="the image install test is opt-in: set HYMY_IMAGE_TEST=1 (root, debootstrap, minutes)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="HYMY_IMAGE_TEST=1 needs root (debootstrap, chroot, mounts)"),
]


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the harness once for the module; its report.json."""
    stage = Path(os.environ.get("HYMY_IMAGE_TEST_STAGE", str(harness.DEFAULT_STAGE)))
    if not stage.is_dir():
        pytest.fail(f"no pi-gen stage at {stage}")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.images.install_harness", "--stage", str(stage), "--work", str(WORK)],
        cwd=harness.REPO,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    path = WORK / "report.json"
    if not path.is_file():
        pytest.fail(
            f"the harness wrote no report (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    data = json.loads(path.read_text())
    data["_output"] = proc.stdout[-6000:] + proc.stderr[-2000:]
    data["_returncode"] = proc.returncode
    return data


@pytest.mark.timeout(3600)
def test_the_harness_passes(report: dict) -> None:
    assert report["ok"], f"{report['error']}\n--- harness output ---\n{report['_output']}"
    assert report["_returncode"] == 0


@pytest.mark.timeout(3600)
def test_every_step_of_every_sub_stage_ran(report: dict) -> None:
    stage = Path(report["stage"])
    expected = []
    for substage in sorted(p for p in stage.iterdir() if p.is_dir()):
        for path in sorted(substage.iterdir()):
            if path.is_file() and (
                path.name.endswith(("-run.sh", "-run-chroot.sh", "-packages", "-packages-nr", "-debconf"))
            ):
                expected.append((substage.name, path.name))
    seen = {(s["substage"], s["name"]): s for s in report["steps"]}
    assert expected, f"no steps found in {stage}"
    for key in expected:
        assert key in seen, f"{key[0]}/{key[1]} did not run: {report['error']}"
        step = seen[key]
        if step["status"] == "skipped":
            assert key in harness.SKIPPED_STEPS, f"{key} skipped but not on SKIPPED_STEPS"
        else:
            assert step["status"] == "ran", f"{key[0]}/{key[1]}: {step['detail']}"
    assert not [s for s in report["steps"] if s["status"] == "failed"]


@pytest.mark.timeout(3600)
def test_the_kiosk_user_exists_in_the_groups_it_needs(report: dict) -> None:
    assert report["checks"]["id_hymy"], "no hymy user in the image"
    groups = set(report["checks"]["hymy_groups"])
    assert {"gpio", "input", "video", "render"} <= groups, groups
    assert report["checks"]["hymy_shell"] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")


@pytest.mark.timeout(3600)
def test_the_installed_command_runs(report: dict) -> None:
    assert report["checks"]["hymy_version"], report["checks"].get("hymy_version_output")
    assert report["checks"]["hymy_version"].startswith("hymy ")
    assert report["checks"]["venv_python"].startswith("Python 3.13"), "Trixie's Python is 3.13"
    names = {line.split("==")[0].lower() for line in report["checks"]["venv_packages"]}
    assert "pygame-ce" in names and "paho-mqtt" in names, "hymy[kiosk]'s dependencies"
    assert not names & {"flask", "sqlalchemy", "amqtt"}, "a terminal carries no fleet server or broker"


@pytest.mark.timeout(3600)
def test_the_kiosk_starts_headless_under_its_units_command_line(report: dict) -> None:
    kiosk = report["kiosk"]
    assert kiosk["exec_start"][:2] == ["/opt/hymy/.venv/bin/hymy", "kiosk"], kiosk["exec_start"]
    assert kiosk["user"] == "hymy"
    assert kiosk["ready_after_s"] is not None, kiosk.get("output_tail")
    assert kiosk["alive_after_ready"], kiosk.get("output_tail")
    if kiosk["unit_environment"].get("WATCHDOG_USEC") or kiosk.get("first_watchdog_ping_s") is not None:
        assert kiosk["first_watchdog_ping_s"] is not None
    # A freshly made terminal has no identity yet: it shows the enrolling screen (STATUS=enrolling).
    assert any(m.endswith("READY=1") for m in kiosk["notify_messages"])
    assert kiosk["exit_code"] == 0 and not kiosk.get("killed_after_timeout"), kiosk.get("output_tail")
