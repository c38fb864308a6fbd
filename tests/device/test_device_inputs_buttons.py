"""The GPIO button panel on gpiozero's mock pins: button i answers i, LEDs thank, pins are released."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from device.inputs import AnswerSource, InputError
from device.inputs.buttons import ButtonPanel
from tests.waiting import wait_until

BUTTONS = (17, 27, 22, 23)
LEDS = (5, 6, 13, 26)


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """A gpiozero mock pin factory, passed in (never installed as the global default)."""
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def panel(mock_pins: MockFactory) -> Iterator[ButtonPanel]:
    """A four-button panel with LEDs on the mock pins, stopped afterwards."""
    p = ButtonPanel(mock_pins, BUTTONS, LEDS, bounce_s=None)
    yield p
    p.stop()


def press(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()


def lit(factory: MockFactory) -> list[bool]:
    return [bool(factory.pin(pin).state) for pin in LEDS]


def test_is_an_answer_source(panel: ButtonPanel) -> None:
    source: AnswerSource = panel
    assert source.kind == "buttons"
    assert panel.buttons == 4


def test_button_i_gives_answer_i(panel: ButtonPanel, mock_pins: MockFactory) -> None:
    answers: list[int] = []
    panel.start(answers.append)
    for pin in reversed(BUTTONS):
        press(mock_pins, pin)
    wait_until(lambda: len(answers) == 4)
    assert answers == [3, 2, 1, 0]


def test_no_answers_before_start_or_after_stop(mock_pins: MockFactory) -> None:
    answers: list[int] = []
    panel = ButtonPanel(mock_pins, BUTTONS, LEDS, bounce_s=None)
    press(mock_pins, BUTTONS[0])
    panel.start(answers.append)
    panel.stop()
    press(mock_pins, BUTTONS[0])
    assert answers == []


def test_feedback_lights_only_the_pressed_buttons_led_then_all_go_out(
    panel: ButtonPanel, mock_pins: MockFactory
) -> None:
    panel.start(lambda answer: None)
    panel.feedback(2, 0.05)
    assert lit(mock_pins) == [False, False, True, False]
    wait_until(lambda: lit(mock_pins) == [False] * 4)
    assert [s.state for s in mock_pins.pin(LEDS[2]).states] == [False, True, False]


def test_a_new_thank_you_replaces_the_previous_one(panel: ButtonPanel, mock_pins: MockFactory) -> None:
    panel.feedback(0, 0.02)
    panel.feedback(3, 30.0)
    time.sleep(0.1)  # past the first thank-you's end: its timer must not put the new LED out
    assert lit(mock_pins) == [False, False, False, True]


def pin_record(factory: MockFactory) -> dict[str, tuple[str, list[bool]]]:
    """Every claimed pin by name, with its function and every state it has had."""
    return {info.name: (pin.function, [s.state for s in pin.states]) for info, pin in factory.pins.items()}


def test_feedback_without_leds_is_a_no_op(mock_pins: MockFactory) -> None:
    with ButtonPanel(mock_pins, BUTTONS, None) as panel:
        before = pin_record(mock_pins)
        panel.feedback(1, 1.0)
        after = pin_record(mock_pins)
    assert set(before) == {f"GPIO{pin}" for pin in BUTTONS}  # no LED pin claimed
    assert after == before  # nothing driven, nothing claimed


def test_feedback_for_an_answer_it_cannot_give_is_a_caller_mistake(panel: ButtonPanel) -> None:
    with pytest.raises(ValueError):
        panel.feedback(4, 1.0)


def test_stop_puts_leds_out_and_releases_the_pins(mock_pins: MockFactory) -> None:
    panel = ButtonPanel(mock_pins, BUTTONS, LEDS)
    panel.feedback(1, 30.0)
    panel.stop()
    panel.stop()
    assert lit(mock_pins) == [False] * 4
    again = ButtonPanel(mock_pins, BUTTONS, LEDS)  # the pins are free again
    again.stop()


def test_busy_pins_are_an_input_error(panel: ButtonPanel, mock_pins: MockFactory) -> None:
    with pytest.raises(InputError, match="cannot claim"):
        ButtonPanel(mock_pins, BUTTONS, None)


@pytest.mark.parametrize(
    ("buttons", "leds", "match"),
    [
        ((17, 27, 22, 17), None, "used twice"),
        ((17, 27, 22, 23), (5, 6, 13), "one per button"),
        ((17,), None, "2..11"),
        ((17, 27, 22, 23), (5, 6, 13, 17), "used twice"),
    ],
)
def test_bad_pin_lists_are_refused(
    mock_pins: MockFactory, buttons: tuple[int, ...], leds: tuple[int, ...] | None, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        ButtonPanel(mock_pins, buttons, leds)


def test_starting_twice_is_refused(panel: ButtonPanel) -> None:
    panel.start(lambda answer: None)
    with pytest.raises(InputError, match="already"):
        panel.start(lambda answer: None)


def test_a_failing_callback_is_logged_and_later_presses_still_arrive(
    panel: ButtonPanel, mock_pins: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[int] = []

    def flaky(answer: int) -> None:
        answers.append(answer)
        if len(answers) == 1:
            raise RuntimeError("queue full")

    panel.start(flaky)
    with caplog.at_level(logging.ERROR, logger="device.inputs.buttons"):
        press(mock_pins, BUTTONS[1])
        press(mock_pins, BUTTONS[2])
        wait_until(lambda: len(answers) == 2)
    assert answers == [1, 2]
    assert "answer callback failed" in caplog.text
