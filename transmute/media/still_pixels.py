"""Holding still the pixels of a paletted clip that barely change, so the GIF leaves them transparent.

Sensor grain and compression noise flip a still pixel between neighbouring palette colours from frame to
frame. ffmpeg's GIF encoder leaves transparent only the pixels that are exactly the previous frame's, so every
flip is stored again. Here each pixel keeps the colour the GIF already shows until its new colour differs from
it by more than `tolerance` in some channel (R, G, B or alpha, 0-255), which is how gifski's denoiser saves
its bytes. The error stays within the tolerance: a slow drift is followed in steps of at most that much.

Noise also flickers: one frame away and back in the next, each time past the tolerance, so the flicker is
stored twice. With a `flicker_tolerance`, a change no larger than that is held when the next frame falls back:
to within the tolerance of what the GIF shows, or part of the way, nearer to it and away from the new colour
(strong grain jumps and falls back; a real change stays, or goes on). It looks ahead one frame, as gifski's
denoiser looks ahead several; a change that lasts shows at once, in its own frame.

Grain moves each pixel on its own; a real change (a shadow, a slow pan over texture) moves a patch of them
together. With a `grain_tolerance` above `tolerance`, a change up to that size is held where it is alone and
shown where most of the pixel's 3x3 neighbourhood changes too (MOVING_NEIGHBOURS): the GIF follows slow real
changes closely without storing the grain.

Noise all over the picture (a dim scene, a camera at a high ISO) changes most pixels by a little more, so every
pixel has moving neighbours. Its changes cancel out over a neighbourhood, where a real change moves the
neighbourhood's mean with it. With a `noise_tolerance` above the others, a change up to that size is held
where the mean colour of its 3x3 neighbourhood stays within NOISE_DRIFT of what the GIF shows there; only on
frames where such changes cover at least NOISY_SHARE of the picture, so that a texture moving over a patch of
a clean picture still shows.

A held pixel keeps what the GIF showed first: in a still scene, one frame's grain, which every later frame
differs from by that grain and its own. So, as gifski's denoiser shows a still pixel's mean over frames,
`settled` makes each scene's first frame show its still pixels (within a `settle_tolerance` of their mean over
the scene's first SETTLE_FRAMES frames) as that mean, before they are paletted; the later frames differ from it by
their own noise only, and more of them are held. A scene with noise all over is left as it is: there the noise
rule holds more than the settled frame would, and it decides by the changes the unsettled frames make.

The frames are `rawvideo` in `pal8`, one after the other as they are paletted (transmute.media.remap): each is
width x height palette indices followed by the 256-entry palette (4 bytes an entry, BGRA). A frame whose
palette is not the one before (a new scene, see transmute.media.scenes) is kept whole, and the holding starts
again from it. numpy compares whole frames at once through a table of how far each palette entry is from
each other (under 1 ms a 480x270 frame).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from transmute.media.quantize import PALETTE_ENTRIES

PALETTE_BYTES = PALETTE_ENTRIES * 4
MOVING_NEIGHBOURS = 6
"""A change up to the grain tolerance shows when at least this many pixels of its 3x3 neighbourhood (itself
included) change too; fewer, and it is taken for grain and held."""
NEIGHBOURHOOD = [(row, column) for row in (-1, 0, 1) for column in (-1, 0, 1)]
NOISE_DRIFT = 2
"""A change up to the noise tolerance is noise where the mean of its 3x3 neighbourhood's colours moves no more
than this from what the GIF shows there, in each of R, G and B."""
NOISY_SHARE = 0.10
"""The noise is held only on a frame where at least this share of the pixels is such noise. Measured per frame
(median): 10.6-13.4 % on real clips with noise added, 9.2 % on a phone's indoor footage, where holding it cost
0.0012 SSIM, at most 6.5 % on the clean real clips (docs/gif-quality.md, "Noise all over" and "A phone's own
noise")."""
NOISE_SAMPLE_STEP = 8
"""Every how many-th pixel tells whether a frame is noisy (all of them are looked at only when it is)."""

SETTLE_FRAMES = 8
"""A scene's first frame shows each still pixel as its mean over the scene's first this many frames..."""
SETTLE_MB = 64.0
"""...or over as many as fit in this many MiB (4 bytes a pixel), 2 at least: 8 frames of 1920x1080 take 63 MiB,
2 of 4096x2160 (the largest output width) 68 MiB. The frames are kept back, copied, while the mean is taken."""
SETTLE_CHUNK = 1 << 16
"""Pixels whose mean is taken at once (the arrays it needs are a few times the frames' size in that many pixels)."""

HOLD, MAYBE_FLICKER, SHOW, MAYBE_GRAIN = 0, 1, 2, 3
"""What a pixel's change is (StillPixels.changes)."""

DRIFT_BITS = 13
"""How many bits each of B, G and R takes in StillPixels.drifts: a difference (-255 to 255) biased by DRIFT_BIAS,
summed over 9 pixels, stays under 2**13, so one int64 addition sums the three channels at once."""
DRIFT_BIAS = 256


class StillPixels:
    """Holds the still pixels of pal8 frames given one at a time, in order (see the module's docstring)."""

    def __init__(self, width: int, height: int, tolerance: int, flicker_tolerance: int = 0,
                 grain_tolerance: int = 0, noise_tolerance: int = 0, settle_tolerance: int = 0) -> None:
        self.width, self.height = width, height
        self.pixels = width * height
        self.tolerance = tolerance
        """0: nothing is held (the flicker and grain tolerances are then unused)."""
        self.flicker_tolerance = flicker_tolerance
        """0 (or no more than `tolerance`): no looking ahead."""
        self.grain_tolerance = grain_tolerance
        """0 (or no more than `tolerance`): no change is told from grain by its neighbours."""
        self.noise_tolerance = noise_tolerance
        """0 (or no more than the others): no change is told from noise by its neighbourhood's mean."""
        self.settle_tolerance = settle_tolerance
        """0: no frame is settled. Else a pixel is still, for settling, when each of its B, G, R and alpha stays
        within this of its mean."""
        self.palette = None
        self.changes = None
        """changes[new << 8 | shown]: HOLD if palette entry `new` is within the tolerance of `shown`, MAYBE_GRAIN
        if within the grain tolerance, SHOW if past the flicker tolerance too, else MAYBE_FLICKER."""
        self.noise_band = None
        """noise_band[new << 8 | shown]: whether the change is past the other tolerances and within the noise's."""
        self.distances = None
        """distances[one << 8 | other]: how far palette entries `one` and `other` are (the largest channel's)."""
        self.changing = None
        """Which pixels change in the frame being held, with a border of unchanging ones (height+2 x width+2)."""
        self.drifts = None
        """drifts[new << 8 | shown]: new - shown in B, G and R, each + DRIFT_BIAS, packed DRIFT_BITS apart."""
        self.shown = None
        """The palette index each pixel shows so far."""

    @property
    def frame_bytes(self) -> int:
        return self.pixels + PALETTE_BYTES

    @property
    def holds_noise(self) -> bool:
        """Whether the noise rule is on: its tolerance is past the others."""
        return self.noise_tolerance > max(self.tolerance, self.grain_tolerance)

    def _in_noise_band(self, distances):
        """Which of `distances` (largest channel's) are past the other tolerances and within the noise's."""
        return (distances > max(self.tolerance, self.grain_tolerance)) & (distances <= self.noise_tolerance)

    def settled(self, frames: Iterable, starts: list[int]) -> Iterator:
        """`frames` (each pixels x BGRA, in the order shown; scenes' first frames at `starts`, 0 the first), each
        scene's first showing its still pixels settled (see the module's docstring). The first SETTLE_FRAMES of a
        scene (fewer past SETTLE_MB) are copies: a frame's buffer may be read into again once the next is asked
        for."""
        if not (self.tolerance and self.settle_tolerance):
            yield from frames
            return
        import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

        frames = iter(frames)
        most = max(2, min(SETTLE_FRAMES, int(SETTLE_MB * 1024 * 1024 // (self.pixels * 4))))
        for start, end in zip(starts, [*starts[1:], None], strict=True):
            first = np.empty((most if end is None else min(most, end - start), self.pixels, 4), np.uint8)
            count = 0
            for count, frame in enumerate(itertools.islice(frames, len(first)), start=1):
                first[count - 1] = frame
            first = first[:count]
            if count > 1 and not self._noisy(first):
                self._settle(first)
            yield from first
            yield from (frames if end is None else itertools.islice(frames, end - start - count))

    def _settle(self, first) -> None:
        """Show in `first[0]` the pixels still over `first` (frames x pixels x BGRA, of one scene) as their mean."""
        import numpy as np

        for begin in range(0, self.pixels, SETTLE_CHUNK):
            part = first[:, begin:begin + SETTLE_CHUNK]
            mean = part.mean(axis=0, dtype=np.float32)
            still = ((part.max(axis=0) - mean <= self.settle_tolerance)
                     & (mean - part.min(axis=0) <= self.settle_tolerance)).all(axis=1)
            part[0][still] = np.rint(mean[still]).astype(np.uint8)

    def _noisy(self, first) -> bool:
        """Whether `first` (frames x pixels x BGRA, of one scene) has noise all over: changes from frame to frame
        in the noise rule's band, past the other tolerances and up to the noise tolerance, in NOISY_SHARE of the
        pixels (the median over the frames that change; every NOISE_SAMPLE_STEP-th pixel)."""
        if not self.holds_noise:
            return False
        import numpy as np

        colours = first[:, ::NOISE_SAMPLE_STEP, :3].astype(np.int16)
        changes = np.abs(np.diff(colours, axis=0)).max(axis=2)
        changes = changes[changes.any(axis=1)]  # a frame repeated (a source slower than the GIF) changes nothing
        shares = sorted(self._in_noise_band(changes).mean(axis=1).tolist())  # np.median's first call takes 6 ms
        middle = len(shares) // 2
        return bool(shares) and (shares[middle] + shares[~middle]) / 2 >= NOISY_SHARE

    def held(self, frames: Iterable[bytearray]) -> Iterator[bytearray]:
        """`frames` (writable buffers of frame_bytes, in order), each held once the next one is known."""
        before = None
        for frame in frames:
            if before is not None:
                self.hold(before, following=frame)
                yield before
            before = frame
        if before is not None:
            self.hold(before)
            yield before

    def hold(self, frame, following=None) -> None:
        """Rewrite `frame` (a writable buffer of frame_bytes: indices, then the palette) in place; `following`,
        the next frame as it came (not held yet), lets a flicker be told from a change that lasts."""
        if not self.tolerance:  # no holding at all, the look-ahead and the neighbours' too
            return
        import numpy as np  # here, not at the top: every process loads the GIF plugin, few convert

        data = np.frombuffer(frame, dtype=np.uint8)
        indices, palette = data[:self.pixels], data[self.pixels:]
        if self.palette is None or not np.array_equal(palette, self.palette):
            self.palette = palette.copy()
            # Alpha counts too: a pixel turning transparent (or back) always shows.
            entries = self.palette.reshape(PALETTE_ENTRIES, 4).astype(np.int16)
            distances = np.abs(entries[:, None, :] - entries[None, :, :]).max(axis=2).ravel()
            self.changes = np.where(distances > max(self.tolerance, self.flicker_tolerance), SHOW,
                                    np.where(distances > self.tolerance, MAYBE_FLICKER, HOLD)).astype(np.uint8)
            self.changes[(distances > self.tolerance) & (distances <= self.grain_tolerance)] = MAYBE_GRAIN
            self.noise_band = self._in_noise_band(distances)
            self.distances = distances.astype(np.uint8)
            if self.noise_tolerance:
                # packed first, then subtracted: each lane stays within 1-511 after the bias, so no lane borrows
                lanes = np.arange(3) * DRIFT_BITS
                packed = (entries[:, :3].astype(np.int64) << lanes).sum(axis=1)
                no_drift = int((DRIFT_BIAS << lanes).sum())
                self.drifts = (packed[:, None] - packed[None, :] + no_drift).ravel()
            self.shown = indices.copy()
            return
        # numpy looks a flat table up far faster than a 256 x 256 one by two index arrays
        keys = (indices.astype(np.intp) << 8) | self.shown
        changes = self.changes[keys]
        if self.holds_noise:
            self._tell_noise(changes, keys)
        if self.grain_tolerance > self.tolerance:
            self._tell_grain(changes)
        if following is not None and self.flicker_tolerance > self.tolerance:
            upcoming = np.frombuffer(following, dtype=np.uint8)
            if np.array_equal(upcoming[self.pixels:], palette):  # past a scene's end nothing is known
                self._tell_flickers(changes, indices, upcoming)
        np.copyto(self.shown, indices, where=changes != HOLD)
        indices[:] = self.shown

    def _tell_flickers(self, changes, indices, upcoming) -> None:
        """Turn each MAYBE_FLICKER of `changes` into HOLD where the `upcoming` frame falls back: to within the
        tolerance of what is shown, or towards it and away from the new colour (grain jumps, then falls back;
        a real change stays, or goes on)."""
        import numpy as np

        maybe = np.flatnonzero(changes == MAYBE_FLICKER)
        new, shown, coming = (pixels[maybe].astype(np.intp) for pixels in (indices, self.shown, upcoming))
        back = self.distances[(coming << 8) | shown]
        falls_back = (back <= self.tolerance) | ((self.distances[(coming << 8) | new] > self.tolerance)
                                                  & (back < self.distances[(new << 8) | shown]))
        changes[maybe[falls_back]] = HOLD

    def _tell_noise(self, changes, keys) -> None:
        """Turn into HOLD each change of `changes` (the frame's, looked up by `keys`) in the noise band whose
        neighbourhood's mean stays, when such changes cover NOISY_SHARE of the frame (noise all over)."""
        import numpy as np

        needed = NOISY_SHARE * self.pixels / NOISE_SAMPLE_STEP
        sampled = np.flatnonzero(self.noise_band[keys[::NOISE_SAMPLE_STEP]]) * NOISE_SAMPLE_STEP
        if len(sampled) < needed or np.count_nonzero(self._mean_stays(keys, sampled)) < needed:
            return
        maybe = np.flatnonzero(self.noise_band[keys])
        changes[maybe[self._mean_stays(keys, maybe)]] = HOLD

    def _mean_stays(self, keys, pixels):
        """Whether the mean drift over each of `pixels`' 3x3 neighbourhood (the picture's edge repeated) stays
        within NOISE_DRIFT in each of B, G and R, from the frame's `keys`."""
        import numpy as np

        rows, columns = np.divmod(pixels, self.width)
        row_starts = {row: np.clip(rows + row, 0, self.height - 1) * self.width for row in (-1, 0, 1)}
        column_at = {column: np.clip(columns + column, 0, self.width - 1) for column in (-1, 0, 1)}
        sums = np.zeros(len(pixels), np.int64)
        for row, column in NEIGHBOURHOOD:
            sums += self.drifts[keys[row_starts[row] + column_at[column]]]
        lane = (1 << DRIFT_BITS) - 1
        stays = np.ones(len(pixels), bool)
        for channel in range(3):
            drift = ((sums >> (channel * DRIFT_BITS)) & lane) - len(NEIGHBOURHOOD) * DRIFT_BIAS
            stays &= np.abs(drift) <= NOISE_DRIFT * len(NEIGHBOURHOOD)
        return stays

    def _tell_grain(self, changes) -> None:
        """Turn each MAYBE_GRAIN of `changes` into HOLD (grain) or MAYBE_FLICKER (a change its neighbours share)."""
        import numpy as np

        maybe = np.flatnonzero(changes == MAYBE_GRAIN)
        if not len(maybe):
            return
        padded_width = self.width + 2
        if self.changing is None:
            self.changing = np.zeros((self.height + 2, padded_width), np.uint8)
        self.changing[1:-1, 1:-1] = (changes != HOLD).reshape(self.height, self.width)
        flat = self.changing.ravel()
        rows, columns = np.divmod(maybe, self.width)
        centres = (rows + 1) * padded_width + columns + 1
        moving = np.zeros(len(maybe), np.uint8)
        for row, column in NEIGHBOURHOOD:
            moving += flat[centres + row * padded_width + column]
        changes[maybe] = np.where(moving >= MOVING_NEIGHBOURS, MAYBE_FLICKER, HOLD)
