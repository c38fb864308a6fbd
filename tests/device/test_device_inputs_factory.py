"""The answer source named by the settings: GPIO panel, serial board, or none (touch and keyboard are the UI's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from device.inputs import InputError
from device.inputs.buttons import ButtonPanel
from device.inputs.factory import hardware_source
from device.inputs.serialboard import SerialBoard
from device.settings import InputSettings


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """A gpiozero mock pin factory, passed in."""
    factory = MockFactory()
    yield factory
    factory.close()


def test_buttons_become_a_panel_on_the_given_pins(mock_pins: MockFactory) -> None:
    source = hardware_source(InputSettings(led_pins=()), 4, mock_pins)
    assert isinstance(source, ButtonPanel) and source.buttons == 4
    source.stop()


def test_a_panel_must_have_one_button_per_answer(mock_pins: MockFactory) -> None:
    with pytest.raises(InputError, match="11 answers"):
        hardware_source(InputSettings(), 11, mock_pins)


def test_serial_becomes_a_board_not_yet_opened() -> None:
    source = hardware_source(InputSettings(kind="serial", serial_url="loop://"), 5)
    assert isinstance(source, SerialBoard) and source.buttons == 5 and not source.connected


@pytest.mark.parametrize("kind", ["touch", "keyboard"])
def test_touch_and_keyboard_are_left_to_the_ui(kind: str) -> None:
    assert hardware_source(InputSettings(kind=kind), 4) is None
