"""`easytune-engine demo`, after the corpus part: the whole loop through a real engine server.

    run_loop(corpus, out, DemoConfig())      # -> the before/after figures (also out/demo.json)

1. start `easytune-engine serve` (CPU, random loopback ports, a fresh data directory in `out`);
2. "artist" session: for a few test prompts the engine generates candidates, the corpus oracle
   (standing in for an artist) orders them - clips that perform the prompt first - and the
   ordering is stored with `submit_ranking`;
3. `start_job spl_refine`: the reward learns the SPL pairs and the ranking pairs (activated);
4. before: candidates for the artist's prompts and one clip for each of some held-out test
   prompts, judged by the oracle;
5. `start_job finetune` (EasyTune-step on the rankings' prompts, activated when done);
6. after: the same requests with the same seeds, judged the same way; a table, and demo.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from easytune_protocol.catalogue import FINAL_JOB_STATES
from easytune_protocol.client import EngineClient

from .eval.backbone import TestPrompt, test_prompts
from .server.process import EngineProcess

REQUEST_TIMEOUT = 300.0  # generate while a job trains on the same cores


@dataclass(frozen=True)
class DemoConfig:
    model: str = "mld"  # shipped name or checkpoint path
    artist_prompts: int = 6
    candidates: int = 4
    eval_prompts: int = 32
    spl_steps: int = 40
    finetune_budget: int = 24  # trajectories
    threads: int = 2
    seed: int = 0


def oracle_score(joints: np.ndarray, prompt: TestPrompt, corpus: Path) -> tuple[int, int, int]:
    """(accepted, actions performed, -failed checks): higher is better; orders candidates."""
    from .data.corpus.oracle import judge
    from .data.corpus.program import program_from_dict

    path = corpus / "programs" / f"{prompt.program_id}.json"
    program = program_from_dict(json.loads(path.read_text()))
    try:
        v = judge(joints, program.actions)
    except ValueError:  # too short to hold every action
        return (0, 0, -100)
    failed = sum(len(s.failed) for s in v.segments)
    return (int(v.accepted), sum(s.passed for s in v.segments), -failed)


def _generate(
    client: EngineClient, p: TestPrompt, n: int, seed: int
) -> tuple[list[str], list[np.ndarray], dict]:
    out = client.request(
        "generate",
        {"prompt": p.text, "candidates": n, "length": p.length, "seed": seed},
        timeout=REQUEST_TIMEOUT,
    )
    return [c["clip_id"] for c in out["clips"]], [c["joints"] for c in out["clips"]], out


def _accuracy(client: EngineClient, prompts: list[TestPrompt], n: int, seed: int, corpus) -> float:
    verdicts = []
    for i, p in enumerate(prompts):
        _, joints, _ = _generate(client, p, n, seed + i)
        verdicts += [oracle_score(j, p, corpus)[0] for j in joints]
    return float(np.mean(verdicts))


def _wait(client: EngineClient, job: dict[str, Any], label: str) -> dict[str, Any]:
    """Follow a job through its events (polling job_status too); print one progress line."""
    job_id, last_line = job["job_id"], ""
    while True:
        for e in client.poll_events(timeout=0.5):
            if e.body.get("job_id") == job_id and e.type in ("job_progress", "job_started"):
                b = e.body
                keys = [k for k in ("reward_recent", "loss", "spl", "rank") if k in b["metrics"]]
                shown = ", ".join(f"{k} {b['metrics'][k]:.3f}" for k in keys)
                line = f"  {label}: {b['step']}/{b['total']} {shown}"
                if line != last_line:
                    print(line, flush=True)
                    last_line = line
        (now,) = client.request("job_status", {"job_id": job_id})["jobs"]
        if now["state"] in FINAL_JOB_STATES:
            return now


def run_loop(corpus: Path, out: Path, config: DemoConfig = DemoConfig()) -> dict[str, Any]:
    c = config
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / f"engine-{time.strftime('%Y%m%d-%H%M%S')}"
    artist = test_prompts(corpus, c.artist_prompts, seed=c.seed + 1)
    held_out = [
        p
        for p in test_prompts(corpus, c.eval_prompts + c.artist_prompts, seed=c.seed + 2)
        if p.text not in {a.text for a in artist}
    ][: c.eval_prompts]
    args = ["--model", c.model, "--data", str(corpus)]
    print(f"starting the engine server (data directory {data_dir}) ...", flush=True)
    with EngineProcess.start(data_dir, args, log=out / "engine.log", threads=c.threads) as engine:
        client = EngineClient.connect(engine.bind, timeout=REQUEST_TIMEOUT, retries=1)
        hello = client.hello("easytune-demo")
        client.subscribe(hello["events"])
        print(f"  engine {hello['engine_version']} at {engine.bind}, models: "
              f"{', '.join(m['name'] for m in hello['models'])}")  # fmt: skip

        print(f"the oracle ranks {c.candidates} candidates for {len(artist)} prompts:")
        pairs = 0
        for i, p in enumerate(artist):
            ids, joints, _ = _generate(client, p, c.candidates, c.seed + 100 + i)
            scores = [oracle_score(j, p, corpus) for j in joints]
            order = sorted(range(len(ids)), key=lambda k: scores[k], reverse=True)
            got = client.request(
                "submit_ranking", {"prompt": p.text, "ranked": [ids[k] for k in order]}
            )
            pairs += got["pairs"]
            accepted = sum(s[0] for s in scores)
            print(f"  {p.text[:60]!r}: {accepted}/{len(ids)} do it")
        print(f"  {pairs} preference pairs stored")

        job = client.request(
            "start_job", {"kind": "spl_refine", "budget": c.spl_steps, "activate": True}
        )["job"]
        spl = _wait(client, job, "SPL refine")
        print(f"  reward {spl['state']}: {spl.get('checkpoint')} {spl['metrics']}")

        def measure() -> dict[str, float]:
            return {
                "artist_prompts_oracle": _accuracy(client, artist, c.candidates, 7000, corpus),
                "held_out_oracle": _accuracy(client, held_out, 1, 9000, corpus),
            }

        print("before fine-tuning: generating and judging ...", flush=True)
        before = measure()
        job = client.request(
            "start_job",
            {"kind": "finetune", "method": "easytune", "budget": c.finetune_budget,
             "activate": True},
        )["job"]  # fmt: skip
        tuned = _wait(client, job, "EasyTune")
        if tuned["state"] != "finished":
            raise RuntimeError(f"the fine-tuning job ended {tuned['state']}: {tuned['message']}")
        print("after fine-tuning: generating and judging ...", flush=True)
        after = measure()
        checkpoints = client.request("list_checkpoints")["checkpoints"]
        client.request("shutdown")
        client.close()
    m = tuned["metrics"]
    rows = [
        ("oracle accuracy, the artist's prompts", before["artist_prompts_oracle"],
         after["artist_prompts_oracle"]),
        ("oracle accuracy, held-out test prompts", before["held_out_oracle"],
         after["held_out_oracle"]),
        ("training reward (first / last 10 trajectories)", m["reward_first"], m["reward_last"]),
    ]  # fmt: skip
    print("\n| measure | before | after |\n| --- | --- | --- |")
    for name, b, a in rows:
        print(f"| {name} | {b:.3f} | {a:.3f} |")
    result = {
        "config": asdict(c),
        "data_dir": str(data_dir),
        "artist_prompts": [p.text for p in artist],
        "held_out_prompts": len(held_out),
        "before": before,
        "after": after,
        "spl_job": spl,
        "finetune_job": tuned,
        "checkpoints": checkpoints,
    }
    (out / "demo.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nfine-tuned checkpoint {tuned['checkpoint']} is active in {data_dir}; "
          f"figures -> {out / 'demo.json'}")  # fmt: skip
    return result
