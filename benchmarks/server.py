"""Engine server speed: generate round-trip overhead, small-request and generate throughput.

    python benchmarks/server.py [--threads 1] [--quick] [--gpu]

Starts a real `python -m easytune_engine serve --cpu --model lcm` on random loopback ports (its
request log, JSON lines on stderr, goes to engine.log next to its data directory) and measures,
from this process through `EngineClient`:

(a) the round trip of one `generate` (1 candidate, 196 frames, the shipped LCM-style model at 4
    steps, so the model's time is small and the overhead visible) against
    `MotionGenerator.generate` of the same request in this process, interleaved run by run, same
    seeds; median and p90 of both and the difference (target: ≤ 5 ms extra). Beyond sampling the
    server turns the features into joints, IK rotations and contacts (`server.motion.clip_arrays`)
    and stores the clip durably (SQLite, synchronous=FULL); both are timed in process too, and the
    log's `ms` (arrival to reply sent) splits the round trip into in-server and wire + client.
(b) `hello` and `health` requests/s: one client one at a time, one client pipelining (up to
    --window requests in flight), and --clients clients pipelining together (target ≥ 1,000/s).
(c) `generate` requests/s (1 candidate, 196 frames, LCM 4 steps) from 1 client and from 8
    concurrent clients, each sending its next request when the last is answered; the mean batch
    size comes from the server's log.

Clients are threads of this process (one `EngineClient` each). One torch thread by default: with
two on a 2-core machine the client's and the server's thread pools fight, and in-process times
jump several-fold from run to run. Other work may share the machine: the 1-minute load average is
recorded before and after. Prints a table, writes benchmarks/results/server.json. `--quick`
(about 10 s) for a smoke run; the full run takes 1–2 min (more while other jobs run).

`--gpu` serves with `serve --gpu 0` and times the in-process side on the same GPU through the same
fast path the server uses (`FastSampler.generate`, CUDA graphs), so (a) is still the overhead of
serving, not eager against graphs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from easytune_engine.models.base import check_lengths
from easytune_engine.models.fastpath import FastSampler
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.server.motion import clip_arrays
from easytune_engine.server.store import ClipRecord, Store
from easytune_engine.server.worker import STAGES
from easytune_protocol import new_id
from easytune_protocol.client import EngineClient, Reply
from machine import machine

PROMPT = "a person jumps twice"
FRAMES = 196  # one clip, 9.8 s at 20 fps
MODEL, STEPS = "lcm", 4  # the shipped LCM-style backbone and its default step count
OVERHEAD_TARGET_MS = 5.0
SMALL_TARGET_PER_S = 1000.0
# s between the timed calls of (a): torch's idle worker threads spin a while after a call, which
# would slow the other process's call on a 2-core machine
PAUSE = 0.05
START_TIMEOUT = 120.0  # s to the `ready` line (imports + model load on a busy machine)


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def stats_ms(seconds: list[float]) -> dict[str, float]:
    """Median, p90, mean and min of durations given in seconds, in milliseconds."""
    ms = np.asarray(seconds) * 1000.0
    return {
        "median_ms": round(float(np.median(ms)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "min_ms": round(float(ms.min()), 3),
        "n": len(seconds),
    }


# -- the server process --------------------------------------------------------------------------


@dataclass
class Server:
    """A running `easytune-engine serve` with its log file."""

    proc: subprocess.Popen
    log_path: Path
    bind: str

    def log(self) -> list[dict[str, Any]]:
        """The JSON lines of engine.log so far."""
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    def request_lines(self, ids: set[str], timeout: float = 10.0) -> list[dict[str, Any]]:
        """The `request` log lines of these request ids (waiting for late ones)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [r for r in self.log() if r.get("event") == "request" and r.get("id") in ids]
            if len(lines) >= len(ids):
                return lines
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids) - len(lines)} requests are not in the log")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(
    workdir: Path,
    threads: int,
    device: tuple[str, ...] = ("--cpu",),
    models: tuple[str, ...] = (MODEL,),
) -> Server:
    """`python -m easytune_engine serve` on random loopback ports, once it has said `ready`."""
    log_path = workdir / "engine.log"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [
        sys.executable, "-m", "easytune_engine", "serve", *device,
        "--bind", "tcp://127.0.0.1:*", "--events", "tcp://127.0.0.1:*",
        "--data-dir", str(workdir / "data"), "--model", *models, "--threads", str(threads),
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    server = Server(proc, log_path, "")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        ready = [r for r in server.log() if r.get("event") == "ready"]
        if ready:
            server.bind = ready[0]["bind"]
            return server
        if proc.poll() is not None:
            raise RuntimeError("the engine exited before ready:\n" + log_path.read_text())
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("the engine did not start in time:\n" + log_path.read_text())


def connect(server: Server) -> EngineClient:
    return EngineClient.connect(server.bind, timeout=120.0, retries=0)


def reply_to(client: EngineClient, request_id: str) -> Reply:
    """The reply to the client's one request in flight (or its timeout)."""
    while True:
        for rep in client.poll_replies(timeout=1.0):
            assert rep.request_id == request_id, "a reply to another request"
            return rep


def gen_body(seed: int) -> dict[str, Any]:
    return {"prompt": PROMPT, "candidates": 1, "length": FRAMES, "seed": seed, "steps": STEPS}


# -- (a) round-trip overhead ---------------------------------------------------------------------


def in_process(gen: MotionGenerator) -> Callable[[int], np.ndarray]:
    """One clip's raw features (FRAMES, 263) for a seed, as the server computes them: eager on a
    CPU (`MotionGenerator.generate`), the CUDA-graph fast path on a GPU."""
    if gen.device.type != "cuda":
        return lambda seed: gen.generate([PROMPT], [FRAMES], seed=seed, steps=STEPS).features[0]
    fast, opts = FastSampler(gen), gen.options(STEPS)
    lengths = check_lengths([FRAMES])

    def one(seed: int) -> np.ndarray:
        raw = fast.generate([PROMPT], lengths, opts, gen.generators(1, seed))
        return raw[0, :FRAMES].numpy().astype(np.float32)

    return one


def round_trip(
    server: Server,
    generate: Callable[[int], np.ndarray],
    store: Store,
    repeats: int,
    pause: float = PAUSE,
) -> dict[str, Any]:
    """Interleaved, run by run with the same seed: in-process generate, then the server's own
    steps after it (clip_arrays, the durable store), then the same request served; `pause` s of
    idle before each of the two timed calls (an artist's pace; 0: back to back)."""
    bare, clip, stored, served, sampling = [], [], [], [], []
    ids: list[str] = []  # the served requests' ids, for their log lines
    max_diff = 0.0  # metres, served joints vs in-process joints of the same seed
    with connect(server) as client:
        client.hello("benchmarks/server.py")
        for r in range(-3, repeats):  # 3 warm-up rounds
            seed = 10_000 + max(r, 0)
            time.sleep(pause)
            t0 = time.perf_counter()
            features = generate(seed)
            t1 = time.perf_counter()
            arrays = clip_arrays(features)  # what the server adds: joints, IK, contacts
            t2 = time.perf_counter()
            store.add_clips([record(features, seed)])  # one SQLite FULL transaction
            t3 = time.perf_counter()
            time.sleep(pause)
            t4 = time.perf_counter()
            rid = client.send("generate", gen_body(seed))
            body = reply_to(client, rid).result()
            t5 = time.perf_counter()
            if r < 0:
                continue
            ids.append(rid)
            bare.append(t1 - t0)
            clip.append(t2 - t1)
            stored.append(t3 - t2)
            served.append(t5 - t4)
            sampling.append(body["elapsed_ms"] / 1000.0)
            diff = np.abs(body["clips"][0]["joints"] - arrays["joints"]).max()
            max_diff = max(max_diff, float(diff))
    # the log's `ms`: arrival to reply sent, inside the server
    lines = server.request_lines(set(ids))
    in_server = {r["id"]: r["ms"] / 1000.0 for r in lines}
    # the worker's stages (worker.STAGES), median ms each, from the same log lines
    stages = {k: round(float(np.median([r["stages"][k] for r in lines])), 3) for k in STAGES}
    inside = [in_server[rid] for rid in ids]
    b, sv, sa, ins = (np.asarray(x) for x in (bare, served, sampling, inside))
    rows = {
        "in_process_generate": stats_ms(bare),
        "in_process_clip_arrays": stats_ms(clip),
        "in_process_store": stats_ms(stored),
        "served_round_trip": stats_ms(served),
        "served_in_server": stats_ms(inside),
        "served_sampling": stats_ms(sampling),  # the reply's elapsed_ms
        # paired, run by run
        "extra_over_generate": stats_ms(list(sv - b)),
        "in_server_not_sampling": stats_ms(list(ins - sa)),  # joints/IK, store, encode
        "outside_server": stats_ms(list(sv - ins)),  # client encode/decode, sockets, decode
    }
    extra = rows["served_round_trip"]["median_ms"] - rows["in_process_generate"]["median_ms"]
    return {
        "frames": FRAMES,
        "model": MODEL,
        "steps": STEPS,
        "repeats": repeats,
        "pause_s": pause,
        **rows,
        "extra_median_ms": round(extra, 3),
        "extra_p90_ms": round(
            rows["served_round_trip"]["p90_ms"] - rows["in_process_generate"]["p90_ms"], 3
        ),
        "target_extra_ms": OVERHEAD_TARGET_MS,
        "meets_target": extra <= OVERHEAD_TARGET_MS,
        "served_vs_in_process_max_joint_diff_m": max_diff,
        "served_stages_median_ms": stages,
    }


def record(features: np.ndarray, seed: int) -> ClipRecord:
    """A clip record like the server's (for timing the store)."""
    return ClipRecord(
        f"clip-{new_id()}", PROMPT, features, MODEL, MODEL, None, seed, 0, "lcm", STEPS, 7.5,
        "benchmark",
    )  # fmt: skip


# -- (b) small requests --------------------------------------------------------------------------


def pipelined(client: EngineClient, type_: str, body: dict, total: int, window: int) -> float:
    """Send `total` requests keeping up to `window` in flight; returns the seconds taken."""
    sent = done = 0
    t0 = time.perf_counter()
    while done < total:
        while sent < total and sent - done < window:
            client.send(type_, body)
            sent += 1
        for rep in client.poll_replies(timeout=10.0):
            rep.result()  # raises on an error or a timeout
            done += 1
    return time.perf_counter() - t0


def pipelined_nth(
    clients: list[EngineClient], type_: str, body: dict, total: int, window: int, k: int
) -> float:
    return pipelined(clients[k], type_, body, total, window)


def in_threads(count: int, work: Callable[[int], Any]) -> tuple[list[Any], float]:
    """Run work(0..count-1) in threads started together; returns results and the wall time."""
    start = threading.Barrier(count + 1)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait()
            results[k] = work(k)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return results, wall


def small_requests(server: Server, total: int, window: int, clients: int) -> list[dict[str, Any]]:
    bodies = {"hello": {"client": "benchmarks/server.py"}, "health": {}}
    rows = []
    for type_, body in bodies.items():
        with connect(server) as client:
            pipelined(client, type_, body, 200, window)  # warm-up
            serial = total // 5
            t0 = time.perf_counter()
            for _ in range(serial):
                client.request(type_, body)
            wall = time.perf_counter() - t0
            rows.append(row(type_, "1 client, one at a time", serial, wall))
            wall = pipelined(client, type_, body, total, window)
            rows.append(row(type_, f"1 client, pipelined ({window} in flight)", total, wall))

        per_client = total // clients
        conns = [connect(server) for _ in range(clients)]
        try:
            work = partial(pipelined_nth, conns, type_, body, per_client, window)
            _, wall = in_threads(clients, work)
        finally:
            for c in conns:
                c.close()
        how = f"{clients} clients, pipelined ({window} in flight each)"
        rows.append(row(type_, how, per_client * clients, wall))
    return rows


def row(type_: str, how: str, requests: int, wall: float) -> dict[str, Any]:
    rate = requests / wall
    return {
        "type": type_,
        "how": how,
        "requests": requests,
        "seconds": round(wall, 3),
        "per_s": round(rate, 1),
        "target_per_s": SMALL_TARGET_PER_S,
        "meets_target": rate >= SMALL_TARGET_PER_S,
    }


# -- (c) generate throughput ---------------------------------------------------------------------


def generate_throughput(server: Server, clients: int, per_client: int) -> dict[str, Any]:
    """`clients` clients each sending `per_client` generates one after another."""
    conns = [connect(server) for _ in range(clients)]

    def work(k: int) -> list[tuple[str, float, float]]:
        """(request id, round trip s, its batch's sampling s) per request of client k."""
        out = []
        for i in range(per_client):
            t0 = time.perf_counter()
            rid = conns[k].send("generate", gen_body(100_000 * (clients + 1) + 1_000 * k + i))
            body = reply_to(conns[k], rid).result()
            out.append((rid, time.perf_counter() - t0, body["elapsed_ms"] / 1000.0))
        return out

    try:
        conns[0].request("generate", gen_body(1))  # warm-up
        results, wall = in_threads(clients, work)
    finally:
        for c in conns:
            c.close()
    done = [x for per in results for x in per]
    lines = server.request_lines({rid for rid, _, _ in done})
    batch = {r["id"]: int(r["batch"]) for r in lines}  # requests sampled together
    calls = sum(1.0 / batch[rid] for rid, _, _ in done)  # sampling calls
    sampling = sum(s / batch[rid] for rid, _, s in done)  # s the worker spent sampling
    return {
        "clients": clients,
        "requests": len(done),
        "seconds": round(wall, 3),
        "per_s": round(len(done) / wall, 2),
        "latency": stats_ms([t for _, t, _ in done]),
        "sampling_calls": round(calls),
        "mean_batch": round(len(done) / calls, 2),  # requests per sampling call
        "max_batch": max(batch.values()),
        "sampling_share_of_wall": round(sampling / wall, 3),
    }


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads, server and in-process (default 1)"
    )
    ap.add_argument("--quick", action="store_true", help="fewer repeats (< 1 min)")
    ap.add_argument("--gpu", action="store_true", help="serve and generate on CUDA device 0")
    ap.add_argument("--repeats", type=int, help="round trips timed (default 100; quick 10)")
    ap.add_argument("--small", type=int, help="small requests per case (default 20000; quick 2000)")
    ap.add_argument("--window", type=int, default=200, help="pipelined requests in flight")
    ap.add_argument("--clients", type=int, default=4, help="clients for the small requests")
    ap.add_argument("--gen-clients", type=int, default=8)
    ap.add_argument(
        "--gen-requests",
        type=int,
        help="generates from 1 client (default 60; quick 8); half that per client with several",
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "server.json"))
    args = ap.parse_args()
    repeats = args.repeats or (10 if args.quick else 100)
    small = args.small or (2000 if args.quick else 20_000)
    gen_requests = args.gen_requests or (8 if args.quick else 60)

    started = time.perf_counter()
    info = machine()
    load_before = load_average()
    torch.set_num_threads(args.threads)
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu: no CUDA device here")
    gen = MotionGenerator.load(MODEL, device="cuda" if args.gpu else "cpu")
    generate = in_process(gen)
    with tempfile.TemporaryDirectory(prefix="easytune-bench-server-") as tmp:
        server = start_server(Path(tmp), args.threads, ("--gpu", "0") if args.gpu else ("--cpu",))
        try:
            store = Store(Path(tmp) / "in-process.sqlite")
            try:
                rt = round_trip(server, generate, store, repeats)
                rt_busy = round_trip(server, generate, store, repeats, pause=0.0)
            finally:
                store.close()
            smalls = small_requests(server, small, args.window, args.clients)
            gens = [
                generate_throughput(server, 1, gen_requests),
                generate_throughput(server, args.gen_clients, max(1, gen_requests // 2)),
            ]
        finally:
            server.stop()
    load_after = load_average()

    print(f"(a) generate round trip, 1 candidate × {FRAMES} frames, {MODEL} {STEPS} steps, ")
    print(f"    {args.threads} torch threads, {repeats} runs")
    print(f"{'':40} {'median ms':>10} {'p90 ms':>8}")
    names = {
        "in_process_generate": "in process: MotionGenerator.generate",
        "in_process_clip_arrays": "in process: clip_arrays (joints, IK)",
        "in_process_store": "in process: store the clip (SQLite)",
        "served_round_trip": "served: EngineClient round trip",
        "served_in_server": "served: in the server (log ms)",
        "served_sampling": "served: sampling (reply elapsed_ms)",
        "extra_over_generate": "round trip − generate, paired",
        "in_server_not_sampling": "in server − sampling (IK, store, encode)",
        "outside_server": "round trip − in server (wire, client)",
    }
    for key, name in names.items():
        print(f"{name:40} {rt[key]['median_ms']:10.2f} {rt[key]['p90_ms']:8.2f}")
    verdict = "meets" if rt["meets_target"] else "misses"
    print(
        f"{'served row − generate row':40} {rt['extra_median_ms']:10.2f} "
        f"{rt['extra_p90_ms']:8.2f}   ({verdict} the ≤ {OVERHEAD_TARGET_MS:g} ms target)"
    )
    busy = rt_busy["extra_over_generate"]
    print(
        f"{'the same, back to back (no idle gap)':40} {busy['median_ms']:10.2f} "
        f"{busy['p90_ms']:8.2f}   (paired; idle threads wake slowly here)"
    )
    parts = ", ".join(f"{k} {v:.2f}" for k, v in rt["served_stages_median_ms"].items())
    print(f"in the server, median ms per stage (engine.log `stages`): {parts}")
    print()
    print(f"(b) small requests (target ≥ {SMALL_TARGET_PER_S:,.0f}/s)")
    print(f"{'type':7} {'how':42} {'requests':>8} {'per s':>9}")
    for r in smalls:
        print(f"{r['type']:7} {r['how']:42} {r['requests']:8d} {r['per_s']:9.0f}")
    print()
    print(f"(c) generate throughput, 1 candidate × {FRAMES} frames, {MODEL} {STEPS} steps")
    head = f"{'clients':>7} {'requests':>8} {'per s':>7} {'median ms':>10} {'p90 ms':>8}"
    print(f"{head} {'batch':>6} {'sampling':>9}")
    for g in gens:
        print(
            f"{g['clients']:7d} {g['requests']:8d} {g['per_s']:7.2f} "
            f"{g['latency']['median_ms']:10.1f} {g['latency']['p90_ms']:8.1f} "
            f"{g['mean_batch']:6.2f} {g['sampling_share_of_wall']:9.0%}"
        )
    print("(batch: requests per sampling call, from engine.log; sampling: share of the wall time")
    print(" the worker spent sampling, the rest goes to joints/IK, the store, encoding, waiting)")
    speedup = gens[1]["per_s"] / gens[0]["per_s"]
    elapsed = time.perf_counter() - started
    print(f"\n{args.gen_clients} clients / 1 client: {speedup:.2f}×; load average (1 min) "
          f"{load_before} before, {load_after} after; {elapsed:.0f} s")  # fmt: skip

    doc = {
        "benchmark": "server",
        "quick": args.quick,
        "threads": args.threads,
        "device": torch.cuda.get_device_name(0) if args.gpu else "cpu",
        "torch": torch.__version__,
        "machine": info,
        "load_average_1min": {"before": load_before, "after": load_after},
        "seconds": round(elapsed, 1),
        "round_trip": rt,
        "round_trip_back_to_back": rt_busy,
        "small_requests": smalls,
        "generate_throughput": gens,
        "generate_speedup_concurrent_over_one": round(speedup, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
