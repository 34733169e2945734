"""ffmpeg runs fed frames by Python (transmute.media.relay): every frame passes through the relay, in order,
while both runs run, or reaches the fed run as Python yields it; whatever fails or is cancelled stops every
part, and the error says what failed."""

from __future__ import annotations

import threading

import ffmpeg
import pytest

from transmute.core.errors import ConversionCancelled, MediaError
from transmute.media.relay import run_fed, run_relayed
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


def written_to(path, options: dict | None = None):
    """ffmpeg reading raw gray frames from a URL and writing them to `path`."""
    def build(url: str):
        return (ffmpeg.input(url, f="rawvideo", pix_fmt="gray", s=f"{WIDTH}x{HEIGHT}", framerate=10,
                             protocol_whitelist="pipe")
                .output(str(path), format="rawvideo", **(options or {})).overwrite_output())
    return build


def within_deadline(call, what: str) -> None:
    """`call()` in a thread that must end within DEADLINE (a hang fails the test instead of stalling it); what
    it raised is raised here."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # re-raised in the test's thread
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"{what} hung"
    if raised:
        raise raised[0]


def relayed(first, second, relay, cancel: threading.Event | None = None, *, each_frame: bool = True) -> None:
    """run_relayed with `relay` applied to each frame, or (each_frame=False) given the stream of frames."""
    within_deadline(lambda: run_relayed(
        first, second, (lambda frames: map(relay, frames)) if each_frame else relay, frame_bytes=FRAME_BYTES,
        cancel=cancel or threading.Event(),
        first_run={"expected_duration": 1.0, "limits": LIMITS},
        second_run={"expected_duration": 1.0, "limits": LIMITS, "warn_if_short": False}), "the relay")


def test_every_frame_passes_through_the_relay_in_order_and_reaches_the_second_run(tmp_path):
    seen: list[int] = []

    def number_and_invert(frame: bytearray) -> bytes:
        seen.append(frame[0])
        return bytes(255 - value for value in frame)

    relayed(frames_of(1.0), written_to(tmp_path / "out.gray"), number_and_invert)
    expected = bytes(255 - value for value in the_frames_of_a_second(tmp_path))
    assert len(seen) == 10 and (tmp_path / "out.gray").read_bytes() == expected


def test_a_relay_may_hold_a_frame_back_until_it_has_seen_the_next(tmp_path):
    def one_behind(frames):
        before = None
        for frame in frames:
            if before is not None:
                yield before
            before = bytes(frame)  # the next frame is read into the same buffer
        if before is not None:
            yield before

    relayed(frames_of(1.0), written_to(tmp_path / "out.gray"), one_behind, each_frame=False)
    assert (tmp_path / "out.gray").read_bytes() == the_frames_of_a_second(tmp_path)


def test_a_second_run_that_fails_stops_the_first_and_its_error_is_raised(tmp_path):
    # a 30 s source the first run would take a while to write; the writer's encoder does not exist
    with pytest.raises(MediaError) as raised:
        relayed(frames_of(30.0, rate=25), written_to(tmp_path / "out.gray", {"vcodec": "no_such_codec"}),
                lambda frame: frame)
    assert "cancelled" not in str(raised.value).lower()


def test_a_first_run_that_fails_is_the_error_raised(tmp_path):
    def broken(url: str):
        return ffmpeg.input("no_such_source=size=8x8", f="lavfi").output(url, format="rawvideo", pix_fmt="gray")

    with pytest.raises(MediaError) as raised:
        relayed(broken, written_to(tmp_path / "out.gray"), lambda frame: frame)
    assert "cancelled" not in str(raised.value).lower()


def at_the_third_frame(act):
    """A relay that calls `act` when the third frame passes."""
    frames = 0

    def relay(frame: bytearray) -> bytearray:
        nonlocal frames
        frames += 1
        if frames == 3:
            act()
        return frame
    return relay


def test_a_relay_that_fails_stops_both_runs_with_its_error(tmp_path):
    def fail_at_the_third() -> None:
        raise ValueError("the relay broke")

    with pytest.raises(ValueError, match="the relay broke"):
        relayed(frames_of(30.0, rate=25), written_to(tmp_path / "out.gray"), at_the_third_frame(fail_at_the_third))


def test_a_cancel_stops_both_runs_and_the_relay(tmp_path):
    cancel = threading.Event()
    with pytest.raises(ConversionCancelled):
        relayed(frames_of(30.0, rate=25), written_to(tmp_path / "out.gray"), at_the_third_frame(cancel.set), cancel)


def fed(frames, second, cancel: threading.Event | None = None) -> None:
    within_deadline(lambda: run_fed(
        frames, second, cancel=cancel or threading.Event(),
        second_run={"expected_duration": 1.0, "limits": LIMITS, "warn_if_short": False}), "the fed run")


def test_a_fed_run_reads_every_frame_python_yields_in_order(tmp_path):
    frames = [bytes([number]) * FRAME_BYTES for number in range(12)]
    fed(iter(frames), written_to(tmp_path / "out.gray"))
    assert (tmp_path / "out.gray").read_bytes() == b"".join(frames)


def test_frames_that_fail_to_come_stop_the_fed_run_with_their_error(tmp_path):
    def broken():
        yield bytes(FRAME_BYTES)
        raise ValueError("no more frames")

    with pytest.raises(ValueError, match="no more frames"):
        fed(broken(), written_to(tmp_path / "out.gray"))


def test_a_fed_run_that_fails_is_the_error_raised_and_python_stops_feeding(tmp_path):
    def endless():
        while True:
            yield bytes(FRAME_BYTES)

    with pytest.raises(MediaError) as raised:
        fed(endless(), written_to(tmp_path / "out.gray", {"vcodec": "no_such_codec"}))
    assert "cancelled" not in str(raised.value).lower()


def test_a_cancel_stops_a_fed_run(tmp_path):
    cancel = threading.Event()

    def frames():
        for number in range(10_000):
            if number == 3:
                cancel.set()
            yield bytes(FRAME_BYTES)

    with pytest.raises(ConversionCancelled):
        fed(frames(), written_to(tmp_path / "out.gray"), cancel)
