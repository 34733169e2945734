"""An ffmpeg run whose frames Python reads as it runs (transmute.media.relay.run_read): every frame reaches
Python, in order; whatever fails or is cancelled stops both sides, and the error says what failed."""

from __future__ import annotations

import threading

import ffmpeg
import pytest

from transmute.core.errors import ConversionCancelled, MediaError
from transmute.media.relay import run_read
from transmute.settings import LimitsConfig

LIMITS = LimitsConfig().for_conversion()
WIDTH, HEIGHT = 32, 16
FRAME_BYTES = WIDTH * HEIGHT  # gray: a byte a pixel
DEADLINE = 60.0


def frames_of(seconds: float, rate: int = 10):
    """ffmpeg writing `seconds` of a 32x16 test picture as raw gray frames to a URL."""
    def build(url: str):
        return (ffmpeg.input(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={rate}:duration={seconds}", f="lavfi")
                .output(url, format="rawvideo", pix_fmt="gray"))
    return build


def the_frames_of_a_second(folder) -> bytes:
    """The raw gray frames frames_of(1.0) writes, written by ffmpeg alone."""
    original = folder / "original.gray"
    ffmpeg.input(f"testsrc2=size={WIDTH}x{HEIGHT}:rate=10:duration=1", f="lavfi").output(
        str(original), format="rawvideo", pix_fmt="gray").run(quiet=True)
    return original.read_bytes()


def read_within_deadline(first, read, cancel: threading.Event | None = None) -> None:
    """run_read of `first` with `read`, in a thread that must end within DEADLINE (a hang fails the test instead of
    stalling it); what it raised is raised here."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            run_read(first, read, frame_bytes=FRAME_BYTES, cancel=cancel or threading.Event(),
                     first_run={"expected_duration": 1.0, "limits": LIMITS})
        except BaseException as error:  # re-raised in the test's thread
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the read run hung"
    if raised:
        raise raised[0]


def test_python_reads_every_frame_of_the_run_in_order(tmp_path):
    seen: list[bytes] = []
    read_within_deadline(frames_of(1.0), lambda frames: seen.extend(bytes(frame) for frame in frames))
    assert len(seen) == 10 and b"".join(seen) == the_frames_of_a_second(tmp_path)


def test_a_run_that_fails_is_the_error_raised():
    def broken(url: str):
        return ffmpeg.input("no_such_source=size=8x8", f="lavfi").output(url, format="rawvideo", pix_fmt="gray")

    with pytest.raises(MediaError) as raised:
        read_within_deadline(broken, lambda frames: list(frames))
    assert "cancelled" not in str(raised.value).lower()


def test_reading_that_fails_stops_the_run_with_its_error():
    def fail_at_the_third(frames) -> None:
        for number, _ in enumerate(frames, start=1):
            if number == 3:
                raise ValueError("the reading broke")

    # a 30 s source the run would take a while to write
    with pytest.raises(ValueError, match="the reading broke"):
        read_within_deadline(frames_of(30.0, rate=25), fail_at_the_third)


def test_a_cancel_stops_the_run_and_the_reading():
    cancel = threading.Event()

    def cancel_at_the_third(frames) -> None:
        for number, _ in enumerate(frames, start=1):
            if number == 3:
                cancel.set()

    with pytest.raises(ConversionCancelled):
        read_within_deadline(frames_of(30.0, rate=25), cancel_at_the_third, cancel)
