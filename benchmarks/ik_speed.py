"""Speed of the IK solver (motion/ik.py) and of the server's `clip_arrays`, before and after its
rewrite, on one CPU thread.

    OMP_NUM_THREADS=1 python benchmarks/ik_speed.py [--repeats 300] [--check 200]
        [--corpus /tmp/ethome/corpus/builtin-v2-8000-s0]

"before" is the original solver, kept as tests/engine/motion/ik_reference.py; "after" is the shipped
one, given float64 joints; "after_f32" the shipped one given float32 joints, which it solves in
float32, as the server does. Target (issue: server overhead <= 5 ms per clip): IK <= 1.2 ms per
196-frame clip on 1 thread (stretch 0.8 ms). Cases: 1 clip and 4 clips in one
`inverse_kinematics_many` call, 196 frames each (real corpus clips of >= 196 frames cut to 196, or
procedural clips from the tests if there is no corpus); `clip_arrays` (features -> joints -> IK ->
arrays) of 1 clip with each solver, and `features_to_joints` alone. Each time is the median of
--repeats calls, made in 4 warm blocks per case that alternate between the cases (so that a change
in the machine's load hits before and after alike); the CPU time (process_time) is reported too, as
other processes may share the machine.

Before timing, a 16 MB array is allocated and freed: that raises glibc's mmap/trim thresholds as
in any long-running process (the server), so that the solvers' ~1 MB of temporaries are not
mapped and page-faulted afresh on every call. Also checks that the two solvers agree (max abs
difference of the local rotations) on --check corpus clips (solved one by one and in batches of
8) and reports it. Prints a table, writes benchmarks/results/ik_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from easytune_engine.motion import ik
from easytune_engine.motion.features import features_to_joints
from easytune_engine.server import motion as server_motion
from machine import machine

_TESTS = Path(__file__).resolve().parents[1] / "tests" / "engine" / "motion"
sys.path.insert(0, str(_TESTS))
import ik_reference  # noqa: E402  (the original solver)
from test_ik import make_motion  # noqa: E402

FRAMES = 196
DEFAULT_CORPUS = "/tmp/ethome/corpus/builtin-v2-8000-s0"


def load_features(corpus: Path, count: int, min_frames: int = 0) -> list[np.ndarray]:
    """Up to `count` raw feature clips (T, 263) of at least min_frames frames, in name order."""
    out = []
    for path in sorted((corpus / "new_joint_vecs").glob("*.npy")):
        x = np.load(path)
        if len(x) >= min_frames:
            out.append(x)
        if len(out) == count:
            break
    return out


def alternating(fns: dict[str, Callable[[], object]], repeats: int, rounds: int = 4) -> dict:
    """Median wall and CPU time (ms) of each function over `repeats` calls, made in `rounds`
    blocks that alternate between the functions (a change in the machine's load hits all alike,
    and each block runs warm, as a server calling one solver would)."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(10):  # warm up
                fn()
            for _ in range(-(-repeats // rounds)):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                c1, t1 = time.process_time(), time.perf_counter()
                wall[name].append(t1 - t0)
                cpu[name].append(c1 - c0)
    return {
        name: {
            "median_ms": 1e3 * statistics.median(wall[name]),
            "min_ms": 1e3 * min(wall[name]),
            "cpu_median_ms": 1e3 * statistics.median(cpu[name]),
            "calls": len(wall[name]),
        }
        for name in fns
    }


def max_difference(clips: list[np.ndarray]) -> float:
    ours = ik.inverse_kinematics_many(clips)
    theirs = ik_reference.inverse_kinematics_many(clips)
    return max(
        float(np.abs(a.local_rotations - b.local_rotations).max())
        for a, b in zip(ours, theirs, strict=True)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--check", type=int, default=200, help="corpus clips to compare solvers on")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ik_speed.json"))
    args = ap.parse_args()
    info = machine()
    np.ones(2_000_000).sum()  # see the module docstring: allocator thresholds

    corpus = Path(args.corpus)
    features = load_features(corpus, 4, FRAMES) if corpus.is_dir() else []
    if len(features) == 4:
        source = f"corpus {corpus.name}: first 4 clips of >= {FRAMES} frames, cut to {FRAMES}"
        features = [x[:FRAMES] for x in features]
        clips = [features_to_joints(x).astype(np.float64) for x in features]
    else:
        source = f"procedural (tests' make_motion), {FRAMES} frames"
        clips = [make_motion(seed, frames=FRAMES) for seed in range(4)]
        features = []

    clips32 = [c.astype(np.float32) for c in clips]

    def clip_arrays_before(x: np.ndarray) -> dict:
        server_motion.inverse_kinematics_many = ik_reference.inverse_kinematics_many
        try:
            return server_motion.clip_arrays(x)
        finally:
            server_motion.inverse_kinematics_many = ik.inverse_kinematics_many

    cases = {
        "ik_1_clip_before": lambda: ik_reference.inverse_kinematics_many(clips[:1]),
        "ik_1_clip_after": lambda: ik.inverse_kinematics_many(clips[:1]),
        "ik_1_clip_after_f32": lambda: ik.inverse_kinematics_many(clips32[:1]),
        "ik_4_clips_before": lambda: ik_reference.inverse_kinematics_many(clips),
        "ik_4_clips_after": lambda: ik.inverse_kinematics_many(clips),
        "ik_4_clips_after_f32": lambda: ik.inverse_kinematics_many(clips32),
    }
    if features:
        cases["clip_arrays_before"] = lambda: clip_arrays_before(features[0])
        cases["clip_arrays_after"] = lambda: server_motion.clip_arrays(features[0])
        cases["features_to_joints"] = lambda: features_to_joints(features[0])
    results = alternating(cases, args.repeats)

    check: dict = {"clips": 0}
    if corpus.is_dir() and args.check > 0:
        joints = [
            features_to_joints(x).astype(np.float64) for x in load_features(corpus, args.check)
        ]
        singles = max(max_difference([j]) for j in joints)
        batches = max(max_difference(joints[i : i + 8]) for i in range(0, len(joints), 8))
        f32 = max(max_difference([j.astype(np.float32)]) for j in joints)
        check = {
            "clips": len(joints),
            "max_abs_difference": max(singles, batches),
            "max_abs_difference_f32": f32,  # float32 rounding of the joints included
        }

    print(f"{info['cpu']}, {info['cores']} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"load average (1 min) at start: {info.get('load_average_1min_at_start')}; {source}")
    print(f"{'case':<22} {'median ms':>10} {'min ms':>8} {'cpu ms':>8}")
    for name, r in results.items():
        print(f"{name:<22} {r['median_ms']:10.3f} {r['min_ms']:8.3f} {r['cpu_median_ms']:8.3f}")
    for case in ("ik_1_clip", "ik_4_clips", "clip_arrays"):
        if f"{case}_after" in results:
            ratio = results[f"{case}_before"]["median_ms"] / results[f"{case}_after"]["median_ms"]
            print(f"{case}: {ratio:.1f}x faster")
        if f"{case}_after_f32" in results:
            ratio = (
                results[f"{case}_before"]["median_ms"] / results[f"{case}_after_f32"]["median_ms"]
            )
            print(f"{case}, float32: {ratio:.1f}x faster")
    if check["clips"]:
        difference, count = check["max_abs_difference"], check["clips"]
        print(f"max |after - before| of the local rotations over {count} clips: {difference:.2e}")
        f32 = check["max_abs_difference_f32"]
        print(f"the same for float32 joints, solved in float32: {f32:.2e}")

    doc = {
        "machine": info,
        "omp_num_threads": os.environ["OMP_NUM_THREADS"],
        "frames": FRAMES,
        "repeats": args.repeats,
        "clips": source,
        "target_ms": {"ik_1_clip": 1.2, "ik_1_clip_stretch": 0.8},
        "results": results,
        "agreement": check,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
