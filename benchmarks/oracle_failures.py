"""Why generated clips fail the corpus oracle, and whether a cheap sampling setting helps.

    EASYTUNE_HOME=/tmp/ethome python benchmarks/oracle_failures.py [--samples 512] [--quick]

For each shipped backbone at its defaults (MDM DDIM 50 w=2.5 eta=0, MLD DDIM 50 w=7.5, LCM 4 steps
w=7.5) on the same test-split prompts as benchmarks/backbone_quality.py (`test_prompts`, written
and read back through `generate_test_set` / `read_motions`, seed 0), every clip is judged by the
oracle and its per-segment verdicts are kept. Reported:

1. oracle accuracy overall (Wilson 95% CI), by number of actions in the program, and per action
   type the share of segments of that type that pass (on the split the oracle chose);
2. the failing checks per action type (labels normalised: numbers -> N, the requested side ->
   <side>, the other side -> <other>), grouped into categories (count, distance, angle/side,
   speed, limb/side (which hand or foot), form, quiet = "nothing else conspicuous"); the near
   miss view: clips that fail exactly one check, and which check (the gain if it alone passed);
3. parameter response: measured count / distance / angle per requested value, generated vs real,
   to tell "the model ignores the number" from "the model is imprecise";
4. references: the real test clips (cropped to the generated length, as generation is) and the
   same clips through the MLD and LCM VAEs (encode, decode): the ceiling the latent models reach;
5. levers, on the same prompts and seeds, each against its backbone's default: MDM DDIM eta=1,
   MDM DDPM 50 (with the same noise streams these two give identical motions), guidance 1.5 / 4
   (MDM), 5 / 10 (MLD), 5 / 10 (LCM); the paired bootstrap 95% CI of the accuracy difference;
6. prompt coverage: accuracy on prompts that state every checked parameter vs the rest (see
   `unstated`), and a probe of the pooled text embedding the backbones are conditioned on.

Default run: 512 prompts, about 13 minutes on one CPU thread (MDM's 5 conditions take 11 of
them); --quick: 32 prompts and three levers, under a minute.

A single-action view (each action of the program judged alone on the whole clip) is not
reported: every detector's "nothing else conspicuous" checks reject a clip that also holds the
program's other actions, so the view would measure the other actions, not the one judged.

Prints the tables and writes benchmarks/results/oracle_failures.json.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

from easytune_engine.data.corpus.build import default_corpus_dir
from easytune_engine.data.corpus.captions import caption_program
from easytune_engine.data.corpus.oracle import Verdict, _perturbed, judge
from easytune_engine.data.corpus.oracle_detectors import QUIET, SPEED_BAND, SPEEDS
from easytune_engine.data.corpus.program import Action, Program, program_from_dict
from easytune_engine.data.humanml3d import load_split
from easytune_engine.eval.backbone import TestPrompt, generate_test_set, test_prompts
from easytune_engine.eval.metrics import wilson
from easytune_engine.eval.motions import read_motions
from easytune_engine.eval.vae_check import vae_round_trip
from easytune_engine.models.pipeline import MotionGenerator
from easytune_engine.motion.features import features_to_joints
from machine import machine

DEFAULTS = {"mdm": "MDM DDIM 50 w=2.5", "mld": "MLD DDIM 50 w=7.5", "lcm": "LCM 4 steps w=7.5"}
LEVERS = [  # (label, backbone, sampling overrides)
    ("MDM DDIM 50 eta=1", "mdm", {"eta": 1.0}),
    ("MDM DDPM 50", "mdm", {"sampler": "ddpm"}),
    ("MDM w=1.5", "mdm", {"guidance": 1.5}),
    ("MDM w=4", "mdm", {"guidance": 4.0}),
    ("MLD w=5", "mld", {"guidance": 5.0}),
    ("MLD w=10", "mld", {"guidance": 10.0}),
    ("LCM w=5", "lcm", {"guidance": 5.0}),
    ("LCM w=10", "lcm", {"guidance": 10.0}),
]
CATEGORIES = ("count", "distance", "angle/side", "speed", "limb/side", "form", "quiet")
# "parameters": the right action with the wrong number, side or speed; "form": the action itself
# is not recognisable; "quiet": something else conspicuous happens on the action's part
_GROUP = {c: "parameters" for c in ("count", "distance", "angle/side", "speed", "limb/side")}
_GROUP |= {"form": "form", "quiet": "quiet"}
_QUIET_LABELS = {label: channel for channel, (label, _) in QUIET.items()}
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_COUNT = re.compile(
    r"^(?:\d+ (?:jump|hop|squat|punch|wave|clap)|once$|one (?:kick|throw)|"
    r"feet apart \d+ times|hands overhead \d+ times|.* raised once$)"
)
_OPPOSITE = {"left": "right", "right": "left"}

# ----------------------------------------------------------------------------------------------
# Pure helpers (statistics and check names)


def paired_diff_ci(
    a: Sequence[bool], b: Sequence[bool], reps: int = 5000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(b) - mean(a) over paired outcomes and its paired bootstrap 95% interval."""
    x = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, x.size, size=(reps, x.size))
    boot = x[idx].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(x.mean()), float(lo), float(hi)


def normalize_check(label: str, action: Action) -> str:
    """A check label without the program's numbers and sides, so clips can be tallied together.

    Quiet checks become "quiet: <channel>"; numbers become N; the action's side becomes <side>
    and the opposite side <other>.
    """
    quiet = re.fullmatch(r"no (.*) above [\d.]+", label)
    if quiet and quiet.group(1) in _QUIET_LABELS:
        return f"quiet: {_QUIET_LABELS[quiet.group(1)]}"
    out = _NUMBER.sub("N", label)
    side = action.side
    if side in _OPPOSITE:
        other = _OPPOSITE[side]
        out = re.sub(rf"\b{side}\b", "<side>", out)
        out = re.sub(rf"\b{other}\b", "<other>", out)
    return out


def check_category(label: str, action: Action) -> str:
    """Which kind of requirement a failed check is: one of CATEGORIES."""
    norm = normalize_check(label, action)
    if norm.startswith("quiet: "):
        return "quiet"
    if _COUNT.match(label):
        return "count"
    if label.startswith(("travel ", "land ")) or label == "walk about 2 pi m":
        return "distance"
    if label.startswith("turn "):
        return "angle/side"
    if label.endswith(" speed") or " speed (" in label:
        return "speed"
    if "<side>" in norm or "<other>" in norm or "the other" in label:
        return "limb/side"
    return "form"


_SPEED_WORDS = {"slow": r"slow|leisurel", "fast": r"quick|fast|brisk|rapid|hurr"}
_ANGLE_WORDS = r"degree|quarter|sharp|half|around|full|complete|slight|small|a bit|a little"


def unstated(text: str, action: Action) -> list[str]:
    """The parameters of `action` that the prompt does not pin down (a heuristic on the words).

    Corpus captions may leave a parameter out or blur it ("a few times", "a long way", no side,
    no speed): see caption_slots.py. Counted as stated: reps by their exact number word/digit
    (once, twice, couple, pair, ...), a distance in meters, slow/fast by a speed word (normal is
    the default pace), a side when "left"/"right" appears, an angle by degrees or its bucket word.
    Approximate for programs with two actions of the same parameter (either may match).
    """
    t = " " + re.sub(r"[^a-z0-9]+", " ", text.lower()) + " "
    out = []
    if action.reps is not None:
        n = action.reps
        if n == 1:
            words = r" once | one time | single "
        elif n == 2:
            words = r" twice | two | 2 | couple | pair "
        else:
            words = rf" {_number_word(n)} | {n} "
        if not re.search(words, t):
            out.append("reps")
    if action.distance_m is not None and not re.search(r"meter|metre", t):
        out.append("distance_m")
    if action.speed in _SPEED_WORDS and not re.search(_SPEED_WORDS[action.speed], t):
        out.append("speed")
    if action.side in ("left", "right") and not re.search(r" left | right ", t):
        out.append("side")
    if action.angle_deg is not None and not re.search(_ANGLE_WORDS, t):
        out.append("angle_deg")
    return out


def _number_word(n: int) -> str:
    from easytune_engine.data.corpus.lexicon import NUMBER_WORDS

    return NUMBER_WORDS[n] if 0 < n < len(NUMBER_WORDS) else str(n)


# the check categories a parameter's value decides
PARAM_CATEGORIES = {
    "reps": ("count",),
    "distance_m": ("distance",),
    "speed": ("speed",),
    "side": ("angle/side", "limb/side"),
    "angle_deg": ("angle/side",),
}


def guess_ceiling(
    texts: list[str], programs: list[tuple[Action, ...]], prior: list[tuple[Action, ...]]
) -> dict:
    """Oracle accuracy of a model perfect on everything the prompt states and guessing the rest.

    For a parameter the prompt leaves out or blurs (`unstated`), the model makes one fixed guess
    per action type, the best one for the `prior` programs (train split): the most common count,
    angle or side; the distance with the most prior values within the oracle's 35%; normal speed.
    Each guess passes when the oracle's tolerance around the program's value holds it. A rough
    ceiling: a model could read more from vague words ("several times", "a long way").
    """
    values: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for actions in prior:
        for a in actions:
            for par in ("reps", "distance_m", "side", "angle_deg"):
                if getattr(a, par) is not None:
                    values[(a.kind, par)][getattr(a, par)] += 1

    def guess(kind: str, par: str):
        seen = values[(kind, par)]
        if par == "distance_m":
            return max(
                seen, key=lambda g: sum(n for v, n in seen.items() if abs(g - v) <= 0.35 * v)
            )
        return seen.most_common(1)[0][0]

    def passes(a: Action, par: str) -> bool:
        if par == "speed":
            table = SPEEDS["walk" if a.kind == "walk_circle" else a.kind]
            nominal = table[a.speed]
            return SPEED_BAND[0] * nominal <= table["normal"] <= SPEED_BAND[1] * nominal
        if (a.kind, par) not in values:
            return False
        g = guess(a.kind, par)
        if par == "distance_m":
            return abs(g - a.distance_m) <= 0.35 * a.distance_m
        if par == "angle_deg":
            return abs(g - a.angle_deg) <= 30.0
        return g == getattr(a, par)

    ok, under = [], []
    per: dict[str, list[bool]] = defaultdict(list)
    for text, actions in zip(texts, programs, strict=True):
        clip_ok, missing_any = True, False
        for a in actions:
            for par in unstated(text, a):
                missing_any = True
                r = passes(a, par)
                per[par].append(r)
                clip_ok &= r
        ok.append(clip_ok)
        under.append(missing_any)
    return {
        "accuracy": float(np.mean(ok)),
        "under_specified_share": float(np.mean(under)),
        "guess_pass_rate": {
            p: {"unstated": len(x), "pass_rate": round(float(np.mean(x)), 3)}
            for p, x in sorted(per.items())
        },
    }


def by_specificity(items: list, texts: list[str]) -> dict:
    """Accuracy on fully specified vs under-specified prompts, and per parameter the share of
    segments failing a check that parameter decides, when the prompt states it or not."""
    full, under = [], []
    per: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for (actions, v), text in zip(items, texts, strict=True):
        missing = [unstated(text, a) for a in actions]
        (under if any(missing) else full).append(v.accepted)
        if len(v.segments) != len(actions):
            continue
        for a, seg, miss in zip(actions, v.segments, missing, strict=True):
            cats = {check_category(label, a) for label in seg.failed}
            for param, pc in PARAM_CATEGORIES.items():
                if getattr(a, param) is None or (param == "side" and a.side == "both"):
                    continue
                if param == "speed" and a.speed == "normal":
                    continue
                key = "unstated" if param in miss else "stated"
                per[param][key].append(bool(cats & set(pc)))

    def acc(x: list[bool]) -> dict:
        return {"clips": len(x), "accuracy": float(np.mean(x)) if x else None} | {
            "ci95": wilson(sum(x), len(x))
        }

    return {
        "fully_specified": acc(full),
        "under_specified": acc(under),
        "param_check_fail_rate": {
            p: {
                k: {"segments": len(x), "fail_rate": round(float(np.mean(x)), 3)}
                for k, x in sorted(d.items())
            }
            for p, d in sorted(per.items())
        },
    }


def _margin(label: str, norm: str, action: Action, measured: dict) -> float | None:
    """How far a failed check missed, as a multiple of what it allows (1 = on the limit).

    Quiet checks: measured value / cap. Distance and angle: |error| / tolerance. Counts:
    |measured - wanted| (1 = off by one). None for other checks.
    """
    if norm.startswith("quiet: "):
        channel = norm.removeprefix("quiet: ")
        cap = float(label.rsplit(" ", 1)[1])
        value = measured.get(f"quiet_{channel}")
        if value is None:
            return None
        return value / cap if cap > 0 else value + 1.0  # counts: 0 allowed, n found -> n + 1
    category = check_category(label, action)
    for name, want, got in _param_pairs(action, measured):
        if name == "distance_m" and category == "distance":
            return abs(got - want) / (0.35 * want)
        if name == "angle_deg" and category == "angle/side":
            return abs(got - want) / (40.0 if action.kind == "spin" else 30.0)
        if name == "reps" and category == "count":
            return abs(got - want)
    return None


def _param_pairs(action: Action, measured: dict[str, float]) -> list[tuple[str, float, float]]:
    """(parameter, requested, measured) for the numeric parameters the oracle measures."""
    k, m, out = action.kind, measured, []
    reps_key = {
        "jump_in_place": "flights",
        "hop": "hops",
        "jumping_jacks": "spreads",
        "squat": "dips",
        "clap": "claps",
    }.get(k)
    if action.reps is not None:
        if reps_key and reps_key in m:
            out.append(("reps", action.reps, m[reps_key]))
        elif k in ("punch", "wave"):
            word = "punches" if k == "punch" else "waves"
            hands = {"left": ("l",), "right": ("r",)}.get(action.side or "both", ("l", "r"))
            keys = [f"{word}_{h}" for h in hands if f"{word}_{h}" in m]
            if keys:
                out.append(("reps", action.reps, float(np.mean([m[x] for x in keys]))))
    if action.distance_m is not None:
        if k in ("walk", "jog", "run", "jump_forward") and "forward_m" in m:
            out.append(("distance_m", action.distance_m, m["forward_m"]))
        elif k == "walk_backward" and "forward_m" in m:
            out.append(("distance_m", action.distance_m, -m["forward_m"]))
        elif k == "side_step" and "lateral_m" in m:
            sign = 1.0 if action.side == "left" else -1.0
            out.append(("distance_m", action.distance_m, sign * m["lateral_m"]))
    if action.angle_deg is not None and "turn_deg" in m:
        sign = 1.0 if action.side == "left" else -1.0
        out.append(("angle_deg", action.angle_deg, sign * m["turn_deg"]))
    if k == "spin" and "turn_deg" in m:
        sign = 1.0 if action.side == "left" else -1.0
        out.append(("angle_deg", 360.0, sign * m["turn_deg"]))
    return out


# ----------------------------------------------------------------------------------------------
# Summaries of a set of (program actions, verdict) pairs


def summarize(items: list[tuple[tuple[Action, ...], Verdict]]) -> dict:
    n = len(items)
    accepted = [v.accepted for _, v in items]
    out: dict = {"clips": n, "accuracy": float(np.mean(accepted)) if n else float("nan")}
    out["accuracy_ci95"] = wilson(sum(accepted), n)
    by_len: dict[int, list[bool]] = defaultdict(list)
    seg: dict[str, list[bool]] = defaultdict(list)
    fails: dict[str, Counter] = defaultdict(Counter)
    cats: Counter = Counter()
    seg_cats: Counter = Counter()
    only_one: Counter = Counter()
    n_failed: Counter = Counter()
    only_kind: Counter = Counter()  # clips whose failures all fall in one group of categories
    params: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    margins: dict[str, list[float]] = defaultdict(list)  # failing value / allowed value
    for actions, v in items:
        by_len[len(actions)].append(v.accepted)
        failed_here = []
        for a, s in zip(actions, v.segments, strict=True):
            seg[a.kind].append(s.passed)
            for label in s.failed:
                norm = normalize_check(label, a)
                margin = _margin(label, norm, a, s.measured)
                if margin is not None:
                    margins[norm if norm.startswith("quiet") else check_category(label, a)].append(
                        margin
                    )
                fails[a.kind][norm] += 1
                cats[check_category(label, a)] += 1
                failed_here.append(f"{a.kind}: {norm}")
            for c in {check_category(label, a) for label in s.failed}:
                seg_cats[c] += 1
            for name, want, got in _param_pairs(a, s.measured):
                params[a.kind + "." + name][float(want)].append(float(got))
        n_failed[min(len(failed_here), 5)] += 1
        groups = {
            _GROUP[check_category(label, a)]
            for a, s in zip(actions, v.segments, strict=True)
            for label in s.failed
        }
        if len(groups) == 1:
            only_kind[groups.pop()] += 1
        if len(failed_here) == 1:
            only_one[failed_here[0]] += 1
    out["accuracy_by_actions"] = {
        str(k): {"clips": len(x), "accuracy": float(np.mean(x)), "ci95": wilson(sum(x), len(x))}
        for k, x in sorted(by_len.items())
    }
    out["segment_pass_rate"] = {
        k: {"segments": len(x), "pass_rate": float(np.mean(x))}
        for k, x in sorted(seg.items(), key=lambda kv: np.mean(kv[1]))
    }
    out["failed_checks"] = {
        k: {
            "segments": len(seg[k]),
            "failed_segments": int(len(seg[k]) - sum(seg[k])),
            "checks": {c: round(cnt / len(seg[k]), 3) for c, cnt in counts.most_common()},
        }
        for k, counts in sorted(fails.items())
    }
    total_seg_fail = sum(len(x) - sum(x) for x in seg.values())
    out["failed_check_categories"] = dict(cats.most_common())
    out["failed_segments_by_category"] = {
        c: round(cnt / max(total_seg_fail, 1), 3) for c, cnt in seg_cats.most_common()
    }
    out["clips_by_failed_checks"] = {
        ("5+" if k == 5 else str(k)): round(c / n, 3) for k, c in sorted(n_failed.items())
    }
    out["clips_failing_only"] = {g: round(only_kind[g] / n, 3) for g in set(_GROUP.values())}
    out["near_miss_share"] = round(n_failed[1] / n, 3) if n else float("nan")
    out["near_miss_checks"] = {c: round(cnt / n, 3) for c, cnt in only_one.most_common()}
    out["failure_margins"] = {
        k: {
            "failures": len(x),
            "median": round(float(np.median(x)), 2),
            "within_1.5x": round(float(np.mean(np.asarray(x) <= 1.5)), 3),
        }
        for k, x in sorted(margins.items(), key=lambda kv: -len(kv[1]))
    }
    out["parameter_response"] = {
        key: {
            str(want): {"n": len(got), "median": round(float(np.median(got)), 3)}
            for want, got in sorted(per.items())
        }
        for key, per in sorted(params.items())
    }
    return out


# ----------------------------------------------------------------------------------------------
# Running


def _programs(corpus: Path, prompts: list[TestPrompt]) -> list[tuple[Action, ...]]:
    out = []
    for p in prompts:
        doc = json.loads((corpus / "programs" / f"{p.program_id}.json").read_text())
        out.append(tuple(program_from_dict(doc).actions))
    return out


def _judge_all(joints: list[np.ndarray], programs: list[tuple[Action, ...]]) -> list:
    items = []
    for j, actions in zip(joints, programs, strict=True):
        try:
            v = judge(j, actions)
        except ValueError as exc:  # too short for the program: counts as a failure
            v = Verdict(False, (), str(exc))
        items.append((actions, v))
    return items


def _generate(gen, corpus: Path, prompts, programs, seed: int, **sampling) -> list:
    with TemporaryDirectory(prefix="oracle-failures-") as tmp:
        generate_test_set(gen, prompts, Path(tmp), seed=seed, **sampling)
        motions = read_motions(Path(tmp), corpus)
    by_id = {m.id: m for m in motions}
    joints = [features_to_joints(by_id[f"g{i:05d}"].features) for i in range(len(prompts))]
    return _judge_all(joints, programs)


def _safe_items(items) -> list:
    """Verdicts without segments (a clip too short for its program) are left out of summaries."""
    return [(a, v) for a, v in items if len(v.segments) == len(a)]


def _changed(a: Sequence[Action], b: Sequence[Action]) -> str:
    """Which parameter differs between two programs of the same action kinds."""
    for x, y in zip(a, b, strict=True):
        for name in ("side", "reps", "angle_deg", "distance_m"):
            if getattr(x, name) != getattr(y, name):
                return name
    return "none"


@torch.no_grad()
def text_probe(gen, corpus: Path, prompts: list[TestPrompt], seed: int) -> dict:
    """Does the conditioning vector (the pooled text embedding) carry the program's numbers?

    For each test program with a side, count, angle or distance, the oracle's hard-negative
    perturbation changes one of them (`oracle._perturbed`); both programs are captioned with the
    same caption rng (so the wording matches where the templates allow). Compared: the cosine of
    the two pooled embeddings, of two wordings of the same program, and of two different programs.
    `same_text`: the share where the changed parameter does not change the caption at all (the
    wording left it out or blurred it). `separated` (over pairs whose text differs): the share where
    the caption with the changed parameter lies farther from the original than another wording of
    the original does.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    examples = []
    programs = []
    for p in prompts:
        doc = json.loads((corpus / "programs" / f"{p.program_id}.json").read_text())
        programs.append(program_from_dict(doc))
    for i, prog in enumerate(programs):
        hard = _perturbed(prog.actions, rng)
        if hard is None:
            continue
        segs = tuple(replace(s, action=a) for s, a in zip(prog.segments, hard, strict=True))
        other_prog = Program(segs, prog.frames, prog.body_scale, prog.tempo, prog.seed)
        k = 1000 + i
        text = caption_program(prog, np.random.default_rng(k), 2, span_prob=0.0)
        changed = caption_program(other_prog, np.random.default_rng(k), 1, span_prob=0.0)[0]
        unrelated = caption_program(
            programs[(i + 1) % len(programs)], np.random.default_rng(k), 1, span_prob=0.0
        )[0]
        emb = gen.encode([text[0].text, changed.text, text[1].text, unrelated.text])
        emb = torch.nn.functional.normalize(emb, dim=-1)
        cos = (emb[1:] @ emb[0]).tolist()
        same = float(changed.text == text[0].text)
        rows[_changed(prog.actions, hard)].append((cos[0], cos[1], cos[2], same))
        if len(examples) < 6:
            examples.append({"caption": text[0].text, "changed": changed.text})
    out = {}
    for name, vals in sorted(rows.items()):
        v = np.asarray(vals)
        d = v[v[:, 3] == 0]
        out[name] = {
            "pairs": len(v),
            "same_text": round(float(v[:, 3].mean()), 3),
            "cos_changed_parameter": round(float(d[:, 0].mean()), 4) if len(d) else None,
            "cos_other_wording": round(float(v[:, 1].mean()), 4),
            "cos_other_program": round(float(v[:, 2].mean()), 4),
            "separated": round(float(np.mean(d[:, 0] < d[:, 1])), 3) if len(d) else None,
        }
    return {"by_parameter": out, "examples": examples}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _acc_cell(s: dict) -> str:
    lo, hi = s["accuracy_ci95"]
    return f"{_pct(s['accuracy'])} [{100 * lo:.1f}, {100 * hi:.1f}]"


def print_tables(doc: dict) -> None:
    rows = doc["conditions"]
    print("\n## Oracle accuracy (Wilson 95% CI)\n")
    print(
        "| condition | clips | accuracy | 1 action | 2 actions | 3 actions | near miss "
        "| only parameters fail | only form fails | only quiet fails |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, s in rows.items():
        by = s["accuracy_by_actions"]
        cells = [_pct(by[k]["accuracy"]) if k in by else "-" for k in ("1", "2", "3")]
        print(
            f"| {label} | {s['clips']} | {_acc_cell(s)} | "
            + " | ".join(cells)
            + f" | {_pct(s['near_miss_share'])} | "
            + " | ".join(_pct(s["clips_failing_only"][g]) for g in ("parameters", "form", "quiet"))
            + " |"
        )
    main = ["Real (cropped)", "MLD VAE round trip", *DEFAULTS.values()]
    main = [m for m in main if m in rows]
    print("\n## Segment pass rate by action type\n")
    print("| action | segments | " + " | ".join(main) + " |")
    print("|---|---|" + "---|" * len(main))
    kinds = sorted(
        rows[main[-1]]["segment_pass_rate"],
        key=lambda k: np.mean(
            [rows[m]["segment_pass_rate"].get(k, {}).get("pass_rate", 0) for m in main[2:]]
        ),
    )
    for k in kinds:
        n = rows[main[-1]]["segment_pass_rate"][k]["segments"]
        cells = [
            _pct(rows[m]["segment_pass_rate"][k]["pass_rate"])
            if k in rows[m]["segment_pass_rate"]
            else "-"
            for m in main
        ]
        print(f"| {k} | {n} | " + " | ".join(cells) + " |")
    print("\n## Failed segments by category (share of failed segments with such a failure)\n")
    print("| condition | " + " | ".join(CATEGORIES) + " |")
    print("|---|" + "---|" * len(CATEGORIES))
    for label in main[1:]:
        c = rows[label]["failed_segments_by_category"]
        print(f"| {label} | " + " | ".join(_pct(c.get(x, 0.0)) for x in CATEGORIES) + " |")
    for label in DEFAULTS.values():
        if label not in rows:
            continue
        s = rows[label]
        print(f"\n## {label}: top failing checks per action type (share of its segments)\n")
        print("| action | seg | pass | top failing checks |")
        print("|---|---|---|---|")
        for k, f in sorted(s["failed_checks"].items(), key=lambda kv: -kv[1]["segments"]):
            top = ", ".join(f"{c} {_pct(r)}" for c, r in list(f["checks"].items())[:4])
            rate = _pct(s["segment_pass_rate"][k]["pass_rate"])
            print(f"| {k} | {f['segments']} | {rate} | {top} |")
        print(f"\nNear misses ({_pct(s['near_miss_share'])} of clips fail exactly one check):")
        for c, r in list(s["near_miss_checks"].items())[:8]:
            print(f"  {_pct(r):>6}  {c}")
    print("\n## How far failures miss (multiple of the allowed value; counts: off by)\n")
    for label in DEFAULTS.values():
        if label not in rows:
            continue
        top = list(rows[label]["failure_margins"].items())[:8]
        cells = [
            f"{k} n={m['failures']} med {m['median']} <=1.5x {_pct(m['within_1.5x'])}"
            for k, m in top
        ]
        print(f"- {label}: " + "; ".join(cells))
    print("\n## Parameter response (median measured per requested value)\n")
    keys = sorted({k for m in main for k in rows[m]["parameter_response"]})
    print("| parameter | requested | " + " | ".join(main) + " |")
    print("|---|---|" + "---|" * len(main))
    for key in keys:
        wants = sorted(
            {w for m in main for w in rows[m]["parameter_response"].get(key, {})}, key=float
        )
        for w in wants:
            cells = []
            for m in main:
                c = rows[m]["parameter_response"].get(key, {}).get(w)
                cells.append("-" if c is None else f"{c['median']:g} (n={c['n']})")
            print(f"| {key} | {w} | " + " | ".join(cells) + " |")
    print("\n## Prompt specificity: accuracy on prompts that state every checked parameter\n")
    print("| condition | fully specified | under-specified |")
    print("|---|---|---|")
    for label, s in rows.items():
        b = s["by_prompt_specificity"]
        cells = []
        for k in ("fully_specified", "under_specified"):
            x = b[k]
            lo, hi = x["ci95"]
            cells.append(f"{_pct(x['accuracy'])} [{100 * lo:.0f}, {100 * hi:.0f}] (n={x['clips']})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nShare of segments failing a check the parameter decides, stated vs not stated:\n")
    print("| condition | " + " | ".join(PARAM_CATEGORIES) + " |")
    print("|---|" + "---|" * len(PARAM_CATEGORIES))
    for label in main[1:]:
        per = rows[label]["by_prompt_specificity"]["param_check_fail_rate"]
        cells = []
        for p in PARAM_CATEGORIES:
            d = per.get(p, {})
            st, un = d.get("stated"), d.get("unstated")
            cells.append(
                " / ".join(
                    "-" if x is None else f"{_pct(x['fail_rate'])} (n={x['segments']})"
                    for x in (st, un)
                )
            )
        print(f"| {label} | " + " | ".join(cells) + " |")
    if "prompt_ceiling" in doc:
        c = doc["prompt_ceiling"]
        print(
            f"\nUnder-specified prompts: {_pct(c['under_specified_share'])}. A model perfect on "
            f"what the prompt states, one best guess per action type for the rest, would score "
            f"{_pct(c['accuracy'])}; guesses pass: "
            + ", ".join(
                f"{p} {_pct(r['pass_rate'])} of {r['unstated']}"
                for p, r in c["guess_pass_rate"].items()
            )
        )
    if "text_probe" in doc:
        print("\n## Text probe: pooled text embedding of a caption vs the same with one parameter")
        print("changed (cosine; separated = farther than another wording of the original)\n")
        print(
            "| parameter | pairs | same text | cos changed | cos other wording "
            "| cos other program | separated |"
        )
        print("|---|---|---|---|---|---|---|")
        for p, r in doc["text_probe"]["by_parameter"].items():
            print(
                f"| {p} | {r['pairs']} | {_pct(r['same_text'])} | {r['cos_changed_parameter']} | "
                f"{r['cos_other_wording']} | {r['cos_other_program']} | {r['separated']} |"
            )
    print("\n## Levers (same prompts and seeds; paired bootstrap 95% CI of the change)\n")
    print("| lever | accuracy | vs default | 95% CI | seconds |")
    print("|---|---|---|---|---|")
    for label, lv in doc["levers"].items():
        s = rows[label]
        print(
            f"| {label} | {_acc_cell(s)} | {100 * lv['diff']:+.1f} pt | "
            f"[{100 * lv['ci95'][0]:+.1f}, {100 * lv['ci95'][1]:+.1f}] | {s.get('seconds', '-')} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--quick", action="store_true", help="32 prompts, one lever per backbone")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-levers", action="store_true")
    ap.add_argument(
        "--tables-from", default=None, help="print the tables of a saved JSON, run nothing"
    )
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--out", default=None, help="default results/oracle_failures[_quick].json")
    args = ap.parse_args()
    if args.tables_from:
        print_tables(json.loads(Path(args.tables_from).read_text()))
        return
    torch.set_num_threads(args.threads)
    samples = 32 if args.quick else args.samples
    name = "oracle_failures_quick.json" if args.quick else "oracle_failures.json"
    args.out = args.out or str(Path(__file__).parent / "results" / name)
    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    t0 = time.time()
    where = machine()
    prompts = test_prompts(corpus, samples, args.seed)
    programs = _programs(corpus, prompts)
    split = load_split(corpus, "test")
    real_feats = [split.by_id(p.program_id).features[: p.length] for p in prompts]
    full_feats = [split.by_id(p.program_id).features for p in prompts]
    conditions: dict[str, dict] = {}
    outcomes: dict[str, list[bool]] = {}

    def record(label: str, items: list, seconds: float | None = None) -> None:
        outcomes[label] = [v.accepted for _, v in items]
        s = summarize(_safe_items(items))
        s["accuracy"] = float(np.mean(outcomes[label]))  # too-short clips count as failures
        s["accuracy_ci95"] = wilson(sum(outcomes[label]), len(items))
        s["clips"] = len(items)
        s["by_prompt_specificity"] = by_specificity(items, [p.text for p in prompts])
        if seconds is not None:
            s["seconds"] = round(seconds, 1)
        conditions[label] = s
        print(f"{label}: oracle {_acc_cell(s)} ({s.get('seconds', '-')} s)", flush=True)

    record("Real (full clip)", _judge_all([features_to_joints(f) for f in full_feats], programs))
    record("Real (cropped)", _judge_all([features_to_joints(f) for f in real_feats], programs))
    gens = {name: MotionGenerator.load(name) for name in DEFAULTS}
    for name in ("mld", "lcm"):
        t1 = time.time()
        rec = vae_round_trip(gens[name].backbone, real_feats)
        items = _judge_all([features_to_joints(f) for f in rec], programs)
        record(f"{name.upper()} VAE round trip", items, time.time() - t1)
    for name, label in DEFAULTS.items():
        t1 = time.time()
        record(label, _generate(gens[name], corpus, prompts, programs, args.seed), time.time() - t1)
    probe = text_probe(gens["mdm"], corpus, prompts, args.seed)
    prior = _programs(corpus, test_prompts(corpus, 10**6, args.seed, "train"))
    ceiling = guess_ceiling([p.text for p in prompts], programs, prior)
    levers: dict[str, dict] = {}
    chosen = [] if args.no_levers else LEVERS
    if args.quick:
        chosen = [lv for lv in chosen if lv[0] in ("MDM DDIM 50 eta=1", "MLD w=5", "LCM w=5")]
    for label, name, sampling in chosen:
        t1 = time.time()
        items = _generate(gens[name], corpus, prompts, programs, args.seed, **sampling)
        record(label, items, time.time() - t1)
        diff, lo, hi = paired_diff_ci(outcomes[DEFAULTS[name]], outcomes[label], seed=args.seed)
        levers[label] = {
            "backbone": name,
            "sampling": sampling,
            "against": DEFAULTS[name],
            "diff": diff,
            "ci95": (lo, hi),
        }
    doc = {
        "benchmark": "oracle_failures",
        "corpus": str(corpus),
        "split": "test",
        "samples": len(prompts),
        "seed": args.seed,
        "threads": args.threads,
        "quick": args.quick,
        "minutes": round((time.time() - t0) / 60, 1),
        "machine": where,
        "checkpoints": {n: getattr(g.backbone, "checkpoint_sha256", None) for n, g in gens.items()},
        "defaults": {n: vars(g.options()) for n, g in gens.items()},
        "conditions": conditions,
        "levers": levers,
        "text_probe": probe,
        "prompt_ceiling": ceiling,
    }
    print_tables(doc)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"-> {args.out} ({doc['minutes']} min)")


if __name__ == "__main__":
    main()
