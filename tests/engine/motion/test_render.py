"""GIF previews: frame count and size, visible and moving figures, padding, bad input, speed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from easytune_engine.motion import render

LEFT_LEG = np.array(render._PALETTE[render._LEFT_LEG])
RIGHT_LEG = np.array(render._PALETTE[render._RIGHT_LEG])
GRID = np.array(render._PALETTE[render._GRID])


def _walk(seed: int, frames: int) -> np.ndarray:
    from test_ik import make_motion  # same folder: an SMPL-like figure walking on a curve

    return make_motion(seed, frames=frames)


def _read_gif(path: Path) -> tuple[Image.Image, list[np.ndarray]]:
    image = Image.open(path)
    frames = []
    for i in range(image.n_frames):
        image.seek(i)
        frames.append(np.array(image.convert("RGB")).astype(np.int32))
    return image, frames


def _mask(frame: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.all(frame == colour, axis=-1)


def test_gif_has_the_frames_size_and_a_moving_figure(tmp_path: Path) -> None:
    clips = [_walk(0, 30), _walk(1, 18)]
    path = tmp_path / "preview.gif"
    render.render_gif(path, clips, titles=["first", "second"], fps=20, size=128)
    image, frames = _read_gif(path)
    assert image.format == "GIF"
    assert image.size == (256, 128)
    assert len(frames) == 30  # the longest clip
    assert image.info["duration"] == 50
    assert image.info["loop"] == 0
    first = frames[0]
    assert first.std() > 10  # not blank
    for panel in (slice(0, 128), slice(128, 256)):
        # Both legs are drawn, in distinguishable colours, in every panel.
        assert _mask(first[:, panel], LEFT_LEG).sum() > 20
        assert _mask(first[:, panel], RIGHT_LEG).sum() > 20
    # The figure moves: its leg pixels change between frames.
    legs = [_mask(f, LEFT_LEG) | _mask(f, RIGHT_LEG) for f in frames]
    assert (legs[0] != legs[8]).sum() > 20


def test_short_clips_hold_their_last_frame(tmp_path: Path) -> None:
    path = tmp_path / "padded.gif"
    render.render_gif(path, [_walk(2, 6), _walk(3, 20)], size=96)
    _, frames = _read_gif(path)
    assert len(frames) == 20
    body = slice(0, 80)  # above the progress bar and counter
    held = [f[body, :96] for f in frames[5:]]
    for frame in held[1:]:
        np.testing.assert_array_equal(frame, held[0])
    assert (frames[5][body, 96:] != frames[19][body, 96:]).any()  # the other clip goes on


def test_travel_moves_the_grid(tmp_path: Path) -> None:
    # A rigid pose sliding along +X: the figure stays in view and the grid scrolls under it.
    pose = _walk(4, 1)[0]
    clip = pose + np.linspace(0, 2.0, 25)[:, None, None] * np.array([1.0, 0.0, 0.0])
    frames = render.render_frames([clip], size=128)
    assert len(frames) == 25
    rgb = [np.array(f.convert("RGB")).astype(np.int32) for f in frames]
    legs = [_mask(f, LEFT_LEG) | _mask(f, RIGHT_LEG) for f in rgb]
    assert legs[0].sum() > 20 and legs[-1].sum() > 20
    grid_start, grid_end = _mask(rgb[0], GRID), _mask(rgb[-1], GRID)
    # Away from the ends (where the follow camera's smoothing lags), the figure stays put on screen.
    np.testing.assert_array_equal(legs[6], legs[18])
    assert (grid_start != grid_end).sum() > 50


def test_long_titles_are_cut_to_the_panel() -> None:
    title = "a person walks forward in a wide circle, then waves with both hands " * 3
    frames = render.render_frames([_walk(6, 2)], titles=[title], size=128)
    rgb = np.array(frames[0].convert("RGB")).astype(np.int32)
    text = _mask(rgb, np.array(render._PALETTE[render._TEXT]))
    assert text[:20].any()  # drawn at the top
    assert not text[:20, 124:].any()  # and it stops before the panel's right edge


def test_a_still_clip_keeps_every_frame(tmp_path: Path) -> None:
    clip = np.repeat(_walk(5, 1), 10, axis=0)
    path = tmp_path / "still.gif"
    render.render_gif(path, [clip], size=64)
    assert Image.open(path).n_frames == 10  # the frame counter keeps frames distinct


def test_rendering_is_fast() -> None:
    clips = [_walk(seed, 120) for seed in range(4)]
    render.render_frames([c[:2] for c in clips], size=256)  # warm up
    start = time.perf_counter()
    frames = render.render_frames(clips, titles=list("abcd"), size=256)
    elapsed = time.perf_counter() - start
    assert len(frames) == 120 and frames[0].size == (1024, 256)
    assert elapsed < 2.0  # ~0.1 s here (GIF encoding adds ~0.15 s); loose for busy CI machines


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clips": []}, "non-empty list"),
        ({"clips": np.zeros((5, 22, 3))}, "non-empty list"),
        ({"clips": [np.zeros((5, 22, 3)), np.zeros((5, 21, 3))]}, r"clips\[1\] must have shape"),
        ({"clips": [np.full((5, 22, 3), np.nan)]}, r"clips\[0\] contains NaN"),
        ({"titles": ["a", "b"]}, "titles must be a list of 1 strings"),
        ({"size": 10}, "size"),
        ({"fps": 0}, "fps must be a positive number"),
    ],
)
def test_bad_input_raises(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"clips": [np.zeros((5, 22, 3)) + np.arange(22)[:, None] * 0.1], **kwargs}
    with pytest.raises(ValueError, match=message):
        render.render_gif(tmp_path / "x.gif", **args)
    assert not any(tmp_path.iterdir())
