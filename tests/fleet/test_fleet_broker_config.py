"""``hymy fleet broker-config`` writes a configuration Mosquitto runs as written, and its logins work."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import paho.mqtt.client as mqtt

from fleet.__main__ import main
from fleet.brokerauth import DynsecAccounts, dynsec_password
from sim.brokers import _wait_until_accepting, find_mosquitto, free_port
from sim.testca import TestCA
from tests.conftest import MqttProbe
from tests.waiting import wait_until


class _Running:
    def __init__(self, port: int) -> None:
        self.host, self.port, self.url = "127.0.0.1", port, f"mqtt://127.0.0.1:{port}"


def _start(config: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    text = config.read_text()
    if os.geteuid() == 0:
        config.write_text(text + "user root\n")
    binary = find_mosquitto()
    assert binary is not None
    with open(tmp_path / "err.log", "wb") as err:
        return subprocess.Popen([binary, "-c", str(config)], stderr=err)


def test_the_generated_configuration_runs_refuses_strangers_and_lets_the_fleet_manage_logins(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    server = ca.server()
    out = tmp_path / "out"
    local, tls = free_port(), free_port()
    argv = ["broker-config", str(out), "--tls-port", str(tls), "--local-port", str(local)]
    argv += ["--certfile", str(server.cert), "--keyfile", str(server.key), "--persistence", str(tmp_path / "p")]
    assert main(argv) == 0
    conf = (out / "mosquitto.conf").read_text()
    for line in ("allow_anonymous false", "set_tcp_nodelay true", "persistence true", f"listener {tls}"):
        assert f"\n{line}" in conf
    assert sum(1 for line in conf.splitlines() if line.startswith("#")) > 15  # it explains itself
    for private in ("dynamic-security.json", "fleet-broker.toml"):
        assert stat.S_IMODE((out / private).stat().st_mode) == 0o600
    settings = tomllib.loads((out / "fleet-broker.toml").read_text())
    assert settings["broker_port"] == local and settings["broker_accounts"] == "dynsec"
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "dynamic-security.json").write_bytes((out / "dynamic-security.json").read_bytes())
    proc = _start(out / "mosquitto.conf", tmp_path)
    try:
        assert _wait_until_accepting("127.0.0.1", local, 10, alive=lambda: proc.poll() is None)
        assert _wait_until_accepting("127.0.0.1", tls, 10, alive=lambda: proc.poll() is None)
        runner = _Running(local)
        fleet = MqttProbe(runner, "fleet", username=settings["broker_username"], password=settings["broker_password"])
        assert fleet.subscribe("hymy/v1/+/votes")
        accounts = DynsecAccounts(
            "127.0.0.1", local, settings["broker_admin_username"], settings["broker_admin_password"]
        )
        accounts.add_terminal("kiosk-001", "k" * 40)
        terminal = MqttProbe(_Running(tls), "kiosk-001", username="kiosk-001", password="k" * 40, ca_file=ca.ca_file)
        terminal.publish("hymy/v1/kiosk-001/votes", b"{}")
        assert fleet.expect().topic == "hymy/v1/kiosk-001/votes"
        terminal.close()
        fleet.close()
        anonymous = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        refused: list[str] = []
        anonymous.on_connect = lambda c, u, f, reason, p: refused.append(str(reason))
        anonymous.connect("127.0.0.1", local)
        anonymous.loop_start()
        try:
            wait_until(lambda: bool(refused), what="an answer to the anonymous client")
        finally:
            anonymous.disconnect()
            anonymous.loop_stop()
        assert refused == ["Not authorized"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_passwords_are_stored_as_mosquitto_hashes_them() -> None:
    """The plugin's own file format: PBKDF2-SHA512 of the password and salt, base64 (checked live above)."""
    stored = dynsec_password("pw", salt=b"0123456789ab", iterations=101)
    assert stored["iterations"] == 101 and stored["salt"] == "MDEyMzQ1Njc4OWFi"
    assert "pw" not in stored["password"] and len(stored["password"]) == 88
