"""`hymy fleet push-config` places a terminal: desired configuration, its unit, and the retained message."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.__main__ import main
from fleet.content import default_config_doc
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


def _doc(**changes: Any) -> dict[str, Any]:
    doc = default_config_doc("unit-a")
    doc.update(changes)
    return doc


def _smn() -> dict[str, Any]:
    doc = _doc(languages=["fi", "smn"])
    doc["question"]["text"]["smn"] = "Maht puáttáččih?"
    return doc


HOURS = {"tz": "Europe/Helsinki", "weekly": {"mon": [["08:00", "16:00"]]}}

#: (name, a document only a terminal used to refuse, what the one-line error names)
REFUSED = [
    ("zone_on_mars", _doc(hours={**HOURS, "tz": "Mars/Olympus_Mons"}), "hours.tz"),
    ("february_30", _doc(hours={**HOURS, "closed_dates": ["2024-02-30"]}), "hours.closed_dates[0]"),
    ("arabic_indic_date", _doc(hours={**HOURS, "closed_dates": ["٢٠٢٤-٠١-٠١"]}), "hours.closed_dates[0]"),
    ("unpadded_time", _doc(hours={**HOURS, "weekly": {"mon": [["9:5", "16:00"]]}}), "hours.weekly.mon"),
    ("unshipped_language_without_texts", _smn(), "strings.smn"),
    ("fractional_brightness", _doc(display={"brightness": 50.5}), "display.brightness"),
    ("boolean_thanks", _doc(thanks_s=True), "thanks_s"),
]


@pytest.mark.parametrize(("doc", "field"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_push_config_refuses_what_a_terminal_would_reject_naming_the_field_storing_and_publishing_nothing(
    tmp_path: Path,
    mosquitto: Any,
    mqtt_probe: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    doc: dict[str, Any],
    field: str,
) -> None:
    db, broker = str(tmp_path / "f.db"), f"{mosquitto.host}:{mosquitto.port}"
    probe = mqtt_probe(mosquitto)
    probe.subscribe("hymy/v1/desk-001/config")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()

    assert main(["push-config", "desk-001", "1", "--doc", str(bad), "--db", db, "--broker", broker]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fleet: configuration: ") and field in err, err
    store = open_store(db)
    try:
        assert store.get_config("desk-001") is None
        assert store.terminal("desk-001") is None  # not even assigned to the document's unit
    finally:
        store.close()
    # Nothing went out: the first configuration the broker delivers is the valid one pushed next.
    assert main(["push-config", "desk-001", "2", "--unit", "unit-b", "--db", db, "--broker", broker]) == 0
    config = decode("hymy/v1/desk-001/config", probe.expect().payload)
    assert isinstance(config, Config) and config.version == 2 and config.doc["unit"] == "unit-b"
