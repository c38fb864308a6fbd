"""The clocks: the fake moves only by hand and reboots like a Pi; the system clock answers sanely."""

from __future__ import annotations

from pathlib import Path

from device.clock import READ_ATTEMPTS, ClockReading, FakeClock, SystemClock, kernel_synced, read_boot_id, read_clock


def test_fake_clock_advances_wall_and_mono_together() -> None:
    clock = FakeClock(wall_ms=1_000, mono_ms=50)
    clock.advance(250)
    assert (clock.wall_ms(), clock.mono_ms()) == (1_250, 300)


def test_fake_clock_wall_steps_without_moving_mono() -> None:
    clock = FakeClock(wall_ms=1_000, mono_ms=50)
    clock.set_wall(9_000)
    assert (clock.wall_ms(), clock.mono_ms()) == (9_000, 50)


def test_fake_clock_reboot_gives_new_boot_and_resets_mono() -> None:
    clock = FakeClock(synced=True)
    before = clock.boot_id()
    clock.advance(5_000)
    clock.reboot()
    assert clock.boot_id() != before
    assert clock.mono_ms() == 0
    assert clock.synced() is False


def test_system_clock_readings_are_plausible() -> None:
    clock = SystemClock()
    assert clock.wall_ms() > 1_600_000_000_000
    first = clock.mono_ms()
    assert clock.mono_ms() >= first >= 0
    assert clock.boot_id() == clock.boot_id()
    assert isinstance(clock.synced(), bool)


def test_boot_id_keeps_dashes(tmp_path: Path) -> None:
    path = tmp_path / "boot_id"
    path.write_text("3f1c2e4a-0000-4000-8000-0123456789ab\n")
    assert read_boot_id(path) == "3f1c2e4a-0000-4000-8000-0123456789ab"


def test_boot_id_falls_back_to_one_uuid_per_process(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert read_boot_id(missing) == read_boot_id(missing)
    assert len(read_boot_id(missing)) == 36


def test_kernel_sync_reads_unsync_flag_and_time_error() -> None:
    def adjtimex_returning(rc: int, status: int):  # type: ignore[no-untyped-def]
        def fn(ptr):  # type: ignore[no-untyped-def]
            ptr._obj.status = status
            return rc

        return fn

    assert kernel_synced(adjtimex_returning(0, 0)) is True
    assert kernel_synced(adjtimex_returning(0, 0x40)) is False
    assert kernel_synced(adjtimex_returning(5, 0)) is False
    assert kernel_synced(adjtimex_returning(-1, 0)) is None


#: A Pi boots with the time it last saved (fake-hwclock), then NTP steps it to the real time.
STALE, REAL = 1_600_000_000_000, 1_750_000_000_000


def test_fake_clock_can_step_right_after_a_wall_read() -> None:
    clock = FakeClock(wall_ms=STALE, synced=False)
    clock.step_after_next_wall_read(REAL)
    assert (clock.wall_ms(), clock.synced()) == (STALE, True)  # the race: an old time, then "synced"
    assert clock.wall_ms() == REAL


def test_a_reading_taken_as_the_clock_steps_never_labels_the_old_time_synchronised() -> None:
    clock = FakeClock(wall_ms=STALE, mono_ms=42, synced=False)
    clock.step_after_next_wall_read(REAL)
    reading = read_clock(clock)
    assert reading == ClockReading(REAL, 42, clock.boot_id(), True)  # read again after the step


def test_a_reading_as_the_clock_loses_sync_is_unsynchronised() -> None:
    clock = FakeClock(wall_ms=REAL, synced=True)
    clock.step_after_next_wall_read(STALE, synced=False)
    assert read_clock(clock).synced is False


class FlappingClock(FakeClock):
    """A synchronisation flag that changes at every look, as no real clock should: the retries must end."""

    def __init__(self) -> None:
        super().__init__(wall_ms=STALE, synced=False)
        self.looks = 0

    def synced(self) -> bool:
        self.looks += 1
        return self.looks % 2 == 0


def test_a_flag_that_keeps_changing_gives_an_unsynchronised_reading_after_bounded_retries() -> None:
    clock = FlappingClock()
    reading = read_clock(clock)
    assert reading.synced is False and reading.wall == STALE
    assert clock.looks == 2 * READ_ATTEMPTS


def test_a_steady_clock_reads_in_one_go() -> None:
    for synced in (True, False):
        clock = FakeClock(wall_ms=REAL, mono_ms=7, synced=synced)
        assert read_clock(clock) == ClockReading(REAL, 7, clock.boot_id(), synced)
