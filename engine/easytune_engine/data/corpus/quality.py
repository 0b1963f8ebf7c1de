"""Quality figures of a built corpus: IK error, physical sanity, oracle accept/reject rates.

These back the numbers `easytune-engine data info` prints and the corpus tests assert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...motion.ik import RestSkeleton, forward_kinematics, inverse_kinematics
from ...motion.skeleton import PARENTS
from .program import Program, program_from_dict

FPS = 20.0
FEET = (7, 8, 10, 11)  # ankles and toe joints


@dataclass(frozen=True)
class Sanity:
    """Physical checks of one clip (T, 22, 3)."""

    min_height_m: float  # lowest joint relative to the clip's floor estimate (foot level)
    foot_slide_m_s: float  # fastest horizontal motion of a toe joint inside a floor contact
    bone_length_spread_m: float  # max over bones of (max - min) length within the clip
    max_joint_speed_m_s: float  # fastest joint


def sanity(joints: np.ndarray, floor: float = 0.0, contact_height: float = 0.01) -> Sanity:
    """Measure a clip: joints (T, 22, 3) with the floor at `floor` (0 for corpus clips).

    A toe counts as planted where it stays within `contact_height` of its resting level.
    """
    parents = np.array(PARENTS)
    parents[0] = 0
    lengths = np.linalg.norm(joints - joints[:, parents], axis=-1)[:, 1:]  # (T, 21)
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1) * FPS  # (T-1, 22)
    slide = 0.0
    for toe in (10, 11):
        # height above the lowest this toe gets within +-1 s: its resting level on whatever it
        # stands on (the floor, or a platform after step_up)
        y = joints[:, toe, 1]
        padded = np.pad(y, 20, mode="edge")
        rest = np.min(np.stack([padded[i : i + len(y)] for i in range(41)]), axis=0)
        height = y - rest
        # inside a contact phase: on the floor the frame before, during and after the step, so the
        # frame where the toe pushes off (it rises and travels at once) is not counted as a slide
        low = height < contact_height
        planted = low[:-1] & low[1:]
        planted[1:] &= low[:-2]
        planted[:-1] &= low[2:]
        horizontal = np.linalg.norm(np.diff(joints[:, toe, [0, 2]], axis=0), axis=-1) * FPS
        if planted.any():
            slide = max(slide, float(horizontal[planted].max()))
    return Sanity(
        min_height_m=float(joints[..., 1].min() - floor),
        foot_slide_m_s=slide,
        bone_length_spread_m=float((lengths.max(0) - lengths.min(0)).max()),
        max_joint_speed_m_s=float(speed.max()),
    )


def ik_error(joints: np.ndarray) -> float:
    """Max distance (m) between a clip and FK(IK(clip)) on its own rest skeleton."""
    pose = inverse_kinematics(joints)
    rebuilt = forward_kinematics(pose, RestSkeleton.from_joints(joints))
    return float(np.linalg.norm(rebuilt - joints, axis=-1).max())


def load_clip(root: Path, clip_id: str) -> tuple[np.ndarray, Program]:
    """Stored (recovered) joints and the program of one corpus clip."""
    joints = np.load(Path(root) / "new_joints" / f"{clip_id}.npy").astype(np.float64)
    program = program_from_dict(
        json.loads((Path(root) / "programs" / f"{clip_id}.json").read_text())
    )
    return joints, program


def corpus_quality(root: Path, sample: int = 400, seed: int = 0) -> dict:
    """IK error, sanity extremes and oracle rates on a random sample of a built corpus."""
    from .oracle import judge  # the oracle is only needed here

    root = Path(root)
    ids = (root / "all.txt").read_text().split()
    rng = np.random.default_rng(seed)
    picked = [ids[i] for i in rng.choice(len(ids), size=min(sample, len(ids)), replace=False)]
    clips = [load_clip(root, cid) for cid in picked]
    accepted = rejected = wrong_total = 0
    ik_max = 0.0
    worst = Sanity(0.0, 0.0, 0.0, 0.0)
    for i, (joints, program) in enumerate(clips):
        ik_max = max(ik_max, ik_error(joints))
        s = sanity(joints)
        worst = Sanity(
            min(worst.min_height_m, s.min_height_m),
            max(worst.foot_slide_m_s, s.foot_slide_m_s),
            max(worst.bone_length_spread_m, s.bone_length_spread_m),
            max(worst.max_joint_speed_m_s, s.max_joint_speed_m_s),
        )
        accepted += judge(joints, program.actions).accepted
        # a wrong program: the next clip in the sample whose action kinds differ
        kinds = [a.kind for a in program.actions]
        for j in range(1, len(clips)):
            other = clips[(i + j) % len(clips)][1]
            if [a.kind for a in other.actions] != kinds:
                rejected += not judge(joints, other.actions).accepted
                wrong_total += 1
                break
    return {
        "quality_sample": len(clips),
        "ik_max_error_m": ik_max,
        "min_height_m": worst.min_height_m,
        "foot_slide_max_m_s": worst.foot_slide_m_s,
        "bone_length_spread_max_m": worst.bone_length_spread_m,
        "joint_speed_max_m_s": worst.max_joint_speed_m_s,
        "oracle_accept_rate": accepted / len(clips),
        "oracle_reject_rate": rejected / max(wrong_total, 1),
    }
