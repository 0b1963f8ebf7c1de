"""The generated-motions directory the evaluator judges (generation writes it, `eval` reads it).

    DIR/
      motions.json   {"format": "easytune-motions", "version": 1, "fps": 20,
                      "motions": [ENTRY, ...]}
      <file>.npy       one motion per entry

    ENTRY = {
      "id": "0007",                  # unique, [A-Za-z0-9_.-]+; the file is <id>.npy unless "file"
      "text": "a person waves",      # the prompt it was generated from (non-empty)
      "tokens": ["a/DET", ...],      # optional lemma/POS tokens; else the prompt is analysed
      "program_id": "000004",        # optional: corpus program, read from <corpus>/programs/
      "program": {...},              # optional: the program itself (program_to_dict format)
      "file": "0007.npy",            # optional file name inside DIR
      "multimodality_only": false    # optional: a repeat of a prompt kept for MultiModality only
    }

A motion file holds either un-normalised HumanML3D features (T, 263) float (as the loaders'
`new_joint_vecs/`), or joint positions (T, 22, 3) in metres, Y up, 20 fps (converted with
`joints_to_features`, giving T-1 feature frames). Entries sharing one prompt text are repeated
generations of it: with 2 or more per text, MultiModality is computed over those texts. Entries
marked "multimodality_only" count only there, not in R-Precision, FID, Diversity or the oracle.
The oracle judges an entry only when it names a program (inline or by id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from easytune_engine.data.corpus.program import Program, program_from_dict, program_to_dict

FORMAT = "easytune-motions"
VERSION = 1
FEATURE_DIM = 263
MIN_FRAMES = 8  # two steps of the evaluator's x4 downsampling
MAX_FRAMES = 196  # HumanML3D's longest (T2M crops to 196)
_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True, eq=False)
class Motion:
    """One motion to judge: un-normalised features, its prompt, and its program when known."""

    id: str
    features: np.ndarray  # (T, 263) float32, un-normalised
    text: str
    tokens: tuple[str, ...] | None  # lemma/POS tokens when given
    program: Program | None  # for the oracle
    joints: np.ndarray | None = None  # (T', 22, 3) when the file held joints
    multimodality_only: bool = False  # an extra generation of a prompt, for MultiModality only


def check_features(features: np.ndarray, what: str) -> np.ndarray:
    """Validate one motion's features: (T, 263), finite, MIN_FRAMES <= T <= MAX_FRAMES."""
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[1] != FEATURE_DIM:
        raise ValueError(f"{what}: features must have shape (T, {FEATURE_DIM}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{what}: features must be numeric, got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: zero-length motion (0 frames)")
    if x.shape[0] < MIN_FRAMES:
        raise ValueError(f"{what}: {x.shape[0]} frames is too short; at least {MIN_FRAMES}")
    if x.shape[0] > MAX_FRAMES:
        raise ValueError(
            f"{what}: {x.shape[0]} frames is over-length; at most {MAX_FRAMES} (crop it first)"
        )
    if not np.isfinite(x).all():
        bad = tuple(np.argwhere(~np.isfinite(x))[0].tolist())
        raise ValueError(f"{what}: NaN or inf at frame/dim {bad}")
    return x.astype(np.float32)


def _read_motion(path: Path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    from easytune_engine.motion.features import joints_to_features

    if not path.is_file():
        raise ValueError(f"{what}: motion file {path} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{what}: cannot read {path} as a .npy array ({exc})") from exc
    if x.ndim == 3 and x.shape[1:] == (22, 3):
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise ValueError(f"{what}: joints in {path} contain NaN/inf or are not numbers")
        if x.shape[0] < 2:
            raise ValueError(f"{what}: zero-length motion ({x.shape[0]} joint frames)")
        return check_features(joints_to_features(x.astype(np.float64)), what), x
    if x.ndim == 2 and x.shape[1] != FEATURE_DIM:
        raise ValueError(
            f"{what}: wrong feature size: {path} has shape {x.shape}; expected (T, {FEATURE_DIM}) "
            "features or (T, 22, 3) joints"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{what}: {path} has shape {x.shape}; expected (T, {FEATURE_DIM}) features or "
            "(T, 22, 3) joints"
        )
    return check_features(x, what), None


def _program(entry: dict, corpus: Path | None, what: str) -> Program | None:
    if "program" in entry and entry["program"] is not None:
        try:
            return program_from_dict(entry["program"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{what}: bad inline program ({exc})") from exc
    pid = entry.get("program_id")
    if pid is None:
        return None
    if corpus is None:
        raise ValueError(f"{what}: names program_id {pid!r} but no corpus directory was given")
    path = Path(corpus) / "programs" / f"{pid}.json"
    if not path.is_file():
        raise ValueError(f"{what}: unknown program id {pid!r} (no {path})")
    try:
        return program_from_dict(json.loads(path.read_text()))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{what}: bad program file {path} ({exc})") from exc


def read_motions(root: str | Path, corpus: Path | None = None) -> list[Motion]:
    """Read and validate a generated-motions directory; ValueError names the first problem."""
    root = Path(root)
    index = root / "motions.json"
    if not root.is_dir():
        raise ValueError(f"{root}: no such motions directory")
    if not index.is_file():
        raise ValueError(
            f"{root}: missing motions.json (the list of id -> prompt); see eval/motions.py"
        )
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{index}: not readable JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f'{index}: expected an object with "format": "{FORMAT}"')
    if doc.get("version") != VERSION:
        raise ValueError(
            f"{index}: version {doc.get('version')!r} not supported (expected {VERSION})"
        )
    if doc.get("fps", 20) != 20:
        raise ValueError(f"{index}: fps must be 20, got {doc.get('fps')!r}")
    entries = doc.get("motions")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{index}: "motions" must be a non-empty list')
    out, seen = [], set()
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{index}: motions[{n}] is not an object")
        mid = entry.get("id")
        if not isinstance(mid, str) or not _ID.match(mid):
            raise ValueError(f"{index}: motions[{n}] has a missing or invalid id {mid!r}")
        if mid in seen:
            raise ValueError(f"{index}: id {mid!r} is listed twice")
        seen.add(mid)
        what = f"motion {mid!r}"
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{what}: empty prompt text")
        tokens = entry.get("tokens")
        if tokens is not None:
            if (
                not isinstance(tokens, list)
                or not tokens
                or not all(isinstance(t, str) and t for t in tokens)
            ):
                raise ValueError(f"{what}: tokens must be a non-empty list of 'lemma/POS' strings")
            tokens = tuple(tokens)
        name = entry.get("file", f"{mid}.npy")
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{what}: file must be a plain file name inside {root}, got {name!r}")
        mm_only = entry.get("multimodality_only", False)
        if not isinstance(mm_only, bool):
            raise ValueError(f"{what}: multimodality_only must be true or false")
        features, joints = _read_motion(root / name, what)
        program = _program(entry, corpus, what)
        out.append(Motion(mid, features, text, tokens, program, joints, mm_only))
    return out


def write_motions(
    root: str | Path,
    motions: Sequence[tuple[str, np.ndarray, str]],
    programs: Sequence[Program | None] | None = None,
    extra: Sequence[dict] | None = None,
) -> Path:
    """Write (id, features (T, 263) or joints (T, 22, 3), prompt) triples in this format.

    extra: per motion, more entry fields (e.g. "tokens", "program_id").
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for n, (mid, array, text) in enumerate(motions):
        np.save(root / f"{mid}.npy", np.asarray(array, dtype=np.float32))
        entry: dict = {"id": mid, "text": text}
        if programs is not None and programs[n] is not None:
            entry["program"] = program_to_dict(programs[n])
        if extra is not None:
            entry |= extra[n]
        entries.append(entry)
    doc = {"format": FORMAT, "version": VERSION, "fps": 20, "motions": entries}
    (root / "motions.json").write_text(json.dumps(doc, indent=1) + "\n")
    return root
