"""`hymy fleet push-config` places a terminal: desired configuration, its unit, and the retained message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.__main__ import main
from fleet.store import open_store
from protocol import Config, decode


def test_push_config_sets_the_desired_version_and_assigns_its_unit(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    assert main(["push-config", "desk-001", "1", "--unit", "unit-a", "--db", str(db)]) == 0
    store = open_store(str(db))
    try:
        config = store.get_config("desk-001")
        assert config is not None and config.version == 1 and config.doc["unit"] == "unit-a"
        status = store.terminal("desk-001")
        assert status is not None and status.unit == "unit-a"
    finally:
        store.close()


def test_push_config_with_a_broker_publishes_it_retained(
    tmp_path: Path, mosquitto: Any, mqtt_probe: Callable[..., Any]
) -> None:
    broker = f"{mosquitto.host}:{mosquitto.port}"
    assert (
        main(["push-config", "desk-001", "2", "--unit", "unit-b", "--db", str(tmp_path / "f.db"), "--broker", broker])
        == 0
    )
    probe = mqtt_probe(mosquitto)
    probe.subscribe("hymy/v1/desk-001/config")
    message = probe.expect()
    assert message.retain
    config = decode(message.topic, message.payload)
    assert isinstance(config, Config) and config.version == 2 and config.doc["unit"] == "unit-b"
