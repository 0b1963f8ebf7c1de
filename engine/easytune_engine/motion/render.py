"""Animated GIF previews: one or more clips (T, 22, 3) as stick figures side by side (Pillow only).

Each clip gets a square panel and its own camera: a fixed perspective view from the front-left
of the character (the side of +Z, the direction HumanML3D clips start facing, and +X) looking
slightly down, translated every frame to follow the character's root x, z (lightly smoothed).
The ground grid stays fixed in the world, so it scrolls under a walking figure and travel is
visible. The floor is the clip's lowest joint height. Bones are coloured by chain: the left leg
and arm in blues, the right in reds/oranges, spine and head in dark grey; nearer bones are drawn
over farther ones. Clips of different lengths are padded by holding their last frame; a
progress bar under each panel and a frame counter show where each clip is.

Usage:
    render_gif("preview.gif", [clip_a, clip_b], titles=["a", "b"], fps=20, size=256)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from easytune_engine.motion import skeleton

from ..fileio import atomic_write_bytes

_J = skeleton.NUM_JOINTS

# Palette indices of the "P"-mode frames (no quantising needed when saving the GIF).
_BACKGROUND, _GRID, _TEXT, _PROGRESS, _SPINE, _LEFT_LEG, _LEFT_ARM, _RIGHT_LEG, _RIGHT_ARM = range(
    9
)
_PALETTE = [
    (250, 250, 246),  # background
    (208, 208, 200),  # grid
    (25, 25, 25),  # text
    (150, 150, 150),  # progress bar
    (55, 55, 60),  # spine and head
    (30, 90, 205),  # left leg
    (40, 170, 230),  # left arm
    (205, 45, 35),  # right leg
    (245, 140, 30),  # right arm
]

# Colour of the bone ending at each joint (bone 0 does not exist).
_BONE_COLOUR = np.full(_J, _SPINE)
for _chain, _colour in zip(
    skeleton.KINEMATIC_CHAINS, (_RIGHT_LEG, _LEFT_LEG, _SPINE, _RIGHT_ARM, _LEFT_ARM), strict=True
):
    _BONE_COLOUR[list(_chain[1:])] = _colour
_BONES = np.arange(1, _J)  # bone k joins PARENTS[k] to k
_BONE_PARENTS = np.array(skeleton.PARENTS[1:])
_HEAD = skeleton.JOINT_INDEX["head"]

# Camera, in metres and degrees; the focal length is in panel widths.
CAMERA_AZIMUTH = 35.0  # from +Z towards +X
CAMERA_ELEVATION = 15.0
CAMERA_DISTANCE = 4.5
CAMERA_TARGET_HEIGHT = 0.85  # above the floor, drawn at PRINCIPAL_Y
FOCAL = 1.7
PRINCIPAL_Y = 0.55  # panel heights from the top
FOLLOW_SMOOTHING = 9  # frames in the moving average of the followed root x, z
GRID_SPACING = 0.5
GRID_HALF_EXTENT = 3.0
_NEAR = 0.2  # metres; segments are clipped to this depth


def _camera_basis() -> tuple[np.ndarray, np.ndarray]:
    """Rows (right, up, forward) (3, 3) of the camera and its offset (3,) from the target."""
    az, el = np.radians(CAMERA_AZIMUTH), np.radians(CAMERA_ELEVATION)
    back = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])  # to camera
    forward = -back
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, forward]), CAMERA_DISTANCE * back


def _check_clips(clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(clips, np.ndarray) or not isinstance(clips, Sequence) or len(clips) == 0:
        raise ValueError("clips must be a non-empty list of (T, 22, 3) arrays")
    out = []
    for i, clip in enumerate(clips):
        clip = np.asarray(clip)
        if clip.ndim != 3 or clip.shape[1:] != (_J, 3) or clip.shape[0] < 1:
            raise ValueError(
                f"clips[{i}] must have shape (T, {_J}, 3) with T >= 1, got {clip.shape}"
            )
        if not np.issubdtype(clip.dtype, np.number):
            raise ValueError(f"clips[{i}] must be numeric, got dtype {clip.dtype}")
        clip = clip.astype(np.float64)
        if not np.all(np.isfinite(clip)):
            frame = int(np.argwhere(~np.isfinite(clip))[0, 0])
            raise ValueError(f"clips[{i}] contains NaN or inf (first at frame {frame})")
        out.append(clip)
    return out


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Moving average along axis 0 with edge padding: (T, C) -> (T, C)."""
    if window <= 1 or len(x) == 1:
        return x
    pad = window // 2
    padded = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(x.shape[1])], 1)


def _clip_near(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip camera-space segments a -> b (..., 3) to depth >= _NEAR; also say which are visible."""
    da, db = a[..., 2], b[..., 2]
    visible = (da > _NEAR) | (db > _NEAR)
    denom = db - da
    t = np.clip((_NEAR - da) / np.where(np.abs(denom) < 1e-12, 1.0, denom), 0.0, 1.0)[..., None]
    crossing = a + t * (b - a)  # where the segment meets the near plane
    a = np.where((da < _NEAR)[..., None], crossing, a)
    b = np.where((db < _NEAR)[..., None], crossing, b)
    return a, b, visible


def _to_screen(p: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates (..., 2) of camera-space points (..., 3) in front of the camera."""
    focal = FOCAL * size
    depth = np.maximum(p[..., 2], _NEAR)
    return np.stack(
        [size / 2 + focal * p[..., 0] / depth, PRINCIPAL_Y * size - focal * p[..., 1] / depth], -1
    )


def _segments(a: np.ndarray, b: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Screen segments (..., 4) as x0, y0, x1, y1, and their visibility (...)."""
    a, b, visible = _clip_near(a, b)
    return np.concatenate([_to_screen(a, size), _to_screen(b, size)], axis=-1), visible


class _Panel:
    """Everything one clip needs per frame, projected up front for all frames."""

    def __init__(self, clip: np.ndarray, num_frames: int, size: int) -> None:
        self.length = len(clip)
        follow = _smooth(clip[:, 0, [0, 2]], FOLLOW_SMOOTHING)  # root x, z
        hold = num_frames - len(clip)  # pad by holding the last frame (camera included)
        follow = np.concatenate([follow, np.repeat(follow[-1:], hold, 0)])  # (T, 2)
        clip = np.concatenate([clip, np.repeat(clip[-1:], hold, 0)])  # (T, 22, 3)
        rows, offset = _camera_basis()
        floor = clip[..., 1].min()
        target = np.stack(
            [follow[:, 0], np.full(num_frames, floor + CAMERA_TARGET_HEIGHT), follow[:, 1]], -1
        )
        eye = target + offset  # (T, 3)

        def camera(points: np.ndarray) -> np.ndarray:  # world (T, ..., 3) -> camera space
            shape = (num_frames,) + (1,) * (points.ndim - 2) + (3,)
            return (points - eye.reshape(shape)) @ rows.T

        joints = camera(clip)  # (T, 22, 3)
        self.bones, self.bone_visible = _segments(joints[:, _BONE_PARENTS], joints[:, _BONES], size)
        depth = joints[:, _BONE_PARENTS, 2] + joints[:, _BONES, 2]
        self.bone_order = np.argsort(-depth, axis=1)  # far to near, (T, 21)
        head = joints[:, _HEAD]
        self.head = _to_screen(head, size)  # (T, 2)
        self.head_radius = FOCAL * size * 0.09 / np.maximum(head[:, 2], _NEAR)
        self.head_visible = head[:, 2] > _NEAR

        # Grid lines at fixed world x (and z) multiples of the spacing around the target.
        n = int(GRID_HALF_EXTENT / GRID_SPACING)
        k = np.arange(-n, n + 1) * GRID_SPACING  # (L,)
        lines = []
        for along, across in ((0, 2), (2, 0)):
            level = np.round(target[:, along] / GRID_SPACING)[:, None] * GRID_SPACING + k  # (T, L)
            ends = np.empty((num_frames, len(k), 2, 3))
            ends[..., 1] = floor
            ends[..., along] = level[..., None]
            ends[..., 0, across] = target[:, across, None] - GRID_HALF_EXTENT
            ends[..., 1, across] = target[:, across, None] + GRID_HALF_EXTENT
            lines.append(ends)
        grid = camera(np.concatenate(lines, axis=1).reshape(num_frames, -1, 3)).reshape(
            num_frames, -1, 2, 3
        )
        self.grid, self.grid_visible = _segments(grid[:, :, 0], grid[:, :, 1], size)


def render_frames(
    clips: Sequence[np.ndarray], titles: Sequence[str] | None = None, size: int = 256
) -> list[Image.Image]:
    """The frames ("P" mode, size * len(clips) by size pixels) of `render_gif`."""
    clips = _check_clips(clips)
    if titles is not None:
        if isinstance(titles, str) or len(titles) != len(clips):
            raise ValueError(
                f"titles must be a list of {len(clips)} strings (one per clip), got {titles!r}"
            )
        titles = [str(t) for t in titles]
    if not isinstance(size, (int, np.integer)) or size < 64:
        raise ValueError(
            f"size (panel width and height in pixels) must be an integer >= 64, got {size!r}"
        )
    size = int(size)
    num_frames = max(len(clip) for clip in clips)
    panels = [_Panel(clip, num_frames, size) for clip in clips]
    font = ImageFont.load_default(size=max(10, size // 20))
    palette = [channel for colour in _PALETTE for channel in colour]
    if titles is not None:
        measure = ImageDraw.Draw(Image.new("P", (1, 1)))  # "P" text is wider than getlength says
        titles = [_fit(title, measure, font, size - 8) for title in titles]
    width = max(2, round(size / 90))

    frames = []
    for t in range(num_frames):
        image = Image.new("P", (size * len(panels), size), _BACKGROUND)
        image.putpalette(palette)
        for i, panel in enumerate(panels):
            # Each panel is drawn on its own canvas, so nothing spills into its neighbours.
            canvas = Image.new("P", (size, size), _BACKGROUND)
            draw = ImageDraw.Draw(canvas)
            for line in panel.grid[t][panel.grid_visible[t]].tolist():
                draw.line(line, fill=_GRID, width=1)
            for bone in panel.bone_order[t]:
                if panel.bone_visible[t, bone]:
                    colour = int(_BONE_COLOUR[bone + 1])
                    draw.line(panel.bones[t, bone].tolist(), fill=colour, width=width)
            if panel.head_visible[t]:
                (hx, hy), r = panel.head[t], panel.head_radius[t]
                draw.ellipse([hx - r, hy - r, hx + r, hy + r], outline=_SPINE, width=width)
            if i > 0:
                draw.line([0, 0, 0, size], fill=_GRID, width=1)
            shown = min(t, panel.length - 1)
            bar = (size - 1) * (shown + 1) / panel.length
            draw.rectangle([0, size - 3, bar, size - 1], fill=_PROGRESS)
            counter = f"{shown + 1}/{panel.length}"
            draw.text((4, size - 6), counter, fill=_TEXT, font=font, anchor="ld")
            if titles is not None:
                draw.text((4, 3), titles[i], fill=_TEXT, font=font)
            image.paste(canvas, (i * size, 0))
        frames.append(image)
    return frames


def _fit(
    text: str,
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    width: int,
) -> str:
    """The text, cut short with "..." if it is wider than `width` pixels when drawn."""
    text = " ".join(text.split())
    if draw.textbbox((0, 0), text, font=font)[2] <= width:
        return text
    while text and draw.textbbox((0, 0), text + "...", font=font)[2] > width:
        text = text[:-1]
    return text.rstrip() + "..."


def render_gif(
    path: str | os.PathLike[str],
    clips: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    fps: float = 20.0,
    size: int = 256,
) -> None:
    """Write clips (each (T, 22, 3), metres, Y up) side by side as a looping animated GIF.

    size: width and height of each clip's panel in pixels. fps: GIF frame delays are whole
    centiseconds, so e.g. 30 fps plays at 1/0.03 = 33.3 fps.
    """
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    frames = render_frames(clips, titles, size)
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=1000.0 / fps,
        loop=0,
        optimize=False,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())
