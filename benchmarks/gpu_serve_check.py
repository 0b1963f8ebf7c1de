"""`easytune-engine serve --gpu 0` end to end: served generate on CUDA, fast path and eager.

    python benchmarks/gpu_serve_check.py                  # on a CUDA machine (about 1 minute)
    python benchmarks/gpu_serve_check.py --cpu            # dry run on the CPU

Starts the real engine twice on loopback (the bf16 CUDA-graph fast path, then `--eager`) with the
shipped LCM-style (4 steps) and MLD-style (50 steps) backbones, and sends `generate` requests (1
candidate, 196 frames, same seeds) from one `EngineClient`: the median round trip, the server's
own time per request (its log's `ms`), and the largest joint distance between the fast path's and
the eager path's clips of the same seed. Writes benchmarks/results/gpu_serve_check.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from server import connect, reply_to, start_server

PROMPT = "a person walks forward and waves with the right hand"
FRAMES = 196
CASES = (("lcm", 4), ("mld", 50))


def served(device: tuple[str, ...], repeats: int, work: Path) -> dict:
    """Per model: round trips (s), in-server ms and the joints of seeds 0..2."""
    work.mkdir(parents=True, exist_ok=True)
    server = start_server(work, threads=1, device=device, models=tuple(m for m, _ in CASES))
    out: dict = {}
    try:
        client = connect(server)
        hello = client.hello()
        out["hello"] = {k: hello.get(k) for k in ("engine_version", "capabilities", "models")}
        for model, steps in CASES:
            trips, ids, joints = [], [], []
            for i in range(repeats + 2):
                body = {
                    "prompt": PROMPT,
                    "candidates": 1,
                    "length": FRAMES,
                    "seed": i % 3,
                    "steps": steps,
                    "backbone": model,
                }
                t0 = time.perf_counter()
                rid = client.send("generate", body)
                rep = reply_to(client, rid)
                dt = time.perf_counter() - t0
                if rep.status != "ok":
                    raise RuntimeError(f"generate {model}: {rep.status} {rep.body}")
                if i >= 2:  # the first two capture / warm up
                    trips.append(dt)
                    ids.append(rid)
                if i < 3:
                    joints.append(np.asarray(rep.body["clips"][0]["joints"]))
            log = {r.get("id"): r for r in server.log() if r.get("type") == "generate"}
            ms = [log[i]["ms"] for i in ids if i in log]
            out[model] = {
                "steps": steps,
                "round_trip_ms_median": round(1000 * statistics.median(trips), 2),
                "server_ms_median": round(statistics.median(ms), 2) if ms else None,
                "joints": joints,
            }
        out["graph_events"] = [
            r for r in server.log() if str(r.get("event", "")).startswith("graph_")
        ]
    finally:
        server.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", type=int, default=0, help="serve --gpu N (default 0)")
    ap.add_argument("--cpu", action="store_true", help="serve --cpu instead: a dry run")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "gpu_serve_check.json")
    )
    args = ap.parse_args()
    device = ("--cpu",) if args.cpu else ("--gpu", str(args.gpu))
    with tempfile.TemporaryDirectory() as tmp:
        fast = served(device, args.repeats, Path(tmp) / "fast")
        eager = served((*device, "--eager"), args.repeats, Path(tmp) / "eager")
    rows = []
    for model, steps in CASES:
        diff = max(
            float(np.abs(a - b).max())
            for a, b in zip(fast[model]["joints"], eager[model]["joints"], strict=True)
        )
        rows.append(
            {
                "model": model,
                "steps": steps,
                "fast_round_trip_ms": fast[model]["round_trip_ms_median"],
                "fast_server_ms": fast[model]["server_ms_median"],
                "eager_round_trip_ms": eager[model]["round_trip_ms_median"],
                "eager_server_ms": eager[model]["server_ms_median"],
                "max_joint_diff_m": round(diff, 5),
            }
        )
        print(rows[-1], flush=True)
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    result = {
        "device": name,
        "serve_flags": list(device),
        "frames": FRAMES,
        "repeats": args.repeats,
        "rows": rows,
        "graph_events": fast["graph_events"],
        "hello": fast["hello"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
