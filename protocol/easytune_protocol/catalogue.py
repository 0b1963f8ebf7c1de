"""The message catalogue: every request with its reply body, and every event, declared once.

    spec = REQUESTS["generate"]
    spec.body, spec.reply          # Records: fields, types, limits
    spec.state_changing            # needs an idempotency key in the header
    spec.retry_safe                # the client may resend it after a timeout

The engine's handlers and the add-on both read these; protocol/PROTOCOL.md renders them as tables
(`easytune_protocol.doc` writes the tables, a test checks the document still matches).
Motion conventions: joints in metres, Y up, +Z forward, 20 fps, the 22-joint SMPL chain in the
order of `JOINT_NAMES`; rotations are unit quaternions (w, x, y, z), local to the parent bone
(joint 0: the pelvis in the world).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import ErrorCode, ProtocolError
from .schema import Array, Bool, Field, Float, Int, ListOf, MapOf, Record, Str

# -- limits --------------------------------------------------------------------------------------

FPS = 20
MAX_PROMPT_CHARS = 400
MAX_CANDIDATES = 16
MAX_FRAMES = 196  # per clip, at FPS (9.8 s)
MAX_GUIDANCE = 50.0
MAX_SEED = 2**31 - 1
MAX_STEPS = 1000
MAX_ID_CHARS = 64
MAX_PAGE = 500  # rankings, checkpoints, jobs listed in one reply
MAX_EXPORT_CLIPS = 64  # clips (with motions) in one export page
MAX_BUDGET = 100_000  # fine-tune trajectories / SPL steps of one job
MAX_ANCHOR = 1000.0  # anchor weight of a fine-tune (the shipped MDM used 5)
MAX_TEXT_CHARS = 1000  # free-text messages (errors, job messages)

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)  # fmt: skip
JOINT_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)  # fmt: skip
FOOT_CONTACT_JOINTS: tuple[str, ...] = ("left_ankle", "left_foot", "right_ankle", "right_foot")
NUM_JOINTS = len(JOINT_NAMES)  # 22

SAMPLERS = ("ddpm", "ddim", "lcm")
FINETUNE_METHODS = ("easytune", "easytune-chain", "draft", "alignprop", "drtune", "refl")
ANCHORED_METHODS = ("easytune", "easytune-chain")  # the step-aware ones take an anchor
JOB_KINDS = ("spl_refine", "finetune")
JOB_STATES = ("queued", "running", "cancelling", "finished", "failed", "cancelled", "interrupted")
FINAL_JOB_STATES = ("finished", "failed", "cancelled", "interrupted")

# -- shared field types ------------------------------------------------------------------------

# Ids and names are opaque tokens the engine made or resolves inside its own data directory:
# no slashes, colons (Windows drives) or leading dot, so they can never be paths.
ID = Str(max_len=MAX_ID_CHARS, pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME = ID
PROMPT = Str(max_len=MAX_PROMPT_CHARS, visible=True)
TEXT = Str(max_len=MAX_TEXT_CHARS, min_len=0)
TIME = Float(0.0)  # seconds since the Unix epoch
METRICS = MapOf(Float(), max_items=32)
SHA256 = Str(max_len=64, min_len=64, pattern=r"[0-9a-f]{64}")

MODEL = Record(
    name="model",
    doc="A backbone the engine can generate with.",
    fields=(
        Field("name", NAME, doc='backbone name, e.g. "mld"'),
        Field("kind", Str(choices=("mdm", "mld", "lcm")), doc="architecture"),
        Field("sampler", Str(choices=SAMPLERS), doc="default sampler"),
        Field("steps", Int(1, MAX_STEPS), doc="default denoising steps"),
        Field("max_steps", Int(1, MAX_STEPS), doc="most steps generate accepts"),
        Field("guidance", Float(0.0, MAX_GUIDANCE), doc="default classifier-free guidance"),
        Field(
            "checkpoint", NAME, required=False, doc="active checkpoint (omitted: shipped weights)"
        ),
        Field("adapters", ListOf(NAME, MAX_PAGE), default=[], required=False, doc="LoRA adapters"),
        Field(
            "precision",
            Str(choices=("fp32", "bf16")),
            default="fp32",
            required=False,
            doc="the network's precision in the eager loop (`serve --precision`)",
        ),
    ),
)

SUBSTITUTION = Record(
    doc="One word of the prompt that the engine rewrote before generating.",
    fields=(
        Field("word", Str(max_len=MAX_PROMPT_CHARS), doc="as typed (normalised to lower case)"),
        Field("replacement", Str(max_len=MAX_ID_CHARS), doc="the vocabulary word used instead"),
        Field("reason", Str(choices=("typo", "synonym"))),
        Field("score", Float(-1.0, 1.0), doc="sentence similarity kept (1.0: typo, no word model)"),
    ),
)
CLIP = Record(
    name="clip",
    doc="One generated candidate. T = frames; every array is C order, little-endian.",
    dims=(("T", 1, MAX_FRAMES),),
    fields=(
        Field("clip_id", ID, doc="stored by the engine; rankings refer to it"),
        Field("frames", Int(1, MAX_FRAMES, dim="T"), doc="T, the first axis of every array"),
        Field("joints", Array(("T", NUM_JOINTS, 3)), doc="joint positions, metres, Y up"),
        Field(
            "rotations",
            Array(("T", NUM_JOINTS, 4)),
            doc="per-bone local rotations, unit quaternions (w, x, y, z); [:, 0] is the pelvis "
            "in the world",
        ),
        Field("root_translation", Array(("T", 3)), doc="pelvis position, metres"),
        Field(
            "foot_contacts",
            Array(("T", 4), ("uint8", "bool")),
            doc="1 = planted: left_ankle, left_foot, right_ankle, right_foot",
        ),
    ),
)

RANKING = Record(
    name="ranking",
    fields=(
        Field("ranking_id", Int(1, 2**53)),
        Field("prompt", PROMPT),
        Field("ranked", ListOf(ID, MAX_CANDIDATES, 1, unique=True), doc="clip ids, best first"),
        Field("rejected", ListOf(ID, MAX_CANDIDATES, unique=True), doc="clip ids, unordered"),
        Field("created", TIME),
    ),
)

EXPORT_CLIP = Record(
    name="export_clip",
    dims=(("T", 1, 200),),
    fields=(
        Field("clip_id", ID),
        Field("prompt", PROMPT),
        Field("features", Array(("T", 263)), doc="raw HumanML3D features (T, 263) float32"),
    ),
)

JOB = Record(
    name="job",
    fields=(
        Field("job_id", ID),
        Field("kind", Str(choices=JOB_KINDS)),
        Field("method", Str(choices=FINETUNE_METHODS), required=False),
        Field("state", Str(choices=JOB_STATES)),
        Field("step", Int(0, MAX_BUDGET), doc="steps done"),
        Field("total", Int(0, MAX_BUDGET), doc="steps planned"),
        Field("progress", Float(0.0, 1.0)),
        Field("metrics", METRICS, required=False, default={}, doc="latest values, e.g. reward"),
        Field("message", TEXT, required=False, doc="why it failed or was interrupted"),
        Field("checkpoint", NAME, required=False, doc="checkpoint it wrote (when finished)"),
        Field("created", TIME),
        Field("started", TIME, required=False),
        Field("finished", TIME, required=False),
    ),
)

CHECKPOINT = Record(
    name="checkpoint",
    fields=(
        Field("name", NAME),
        Field("backbone", NAME, doc="model it applies to"),
        Field("kind", Str(choices=("base", "full", "adapter"))),
        Field("parent", NAME, required=False, doc="checkpoint it was fine-tuned from"),
        Field("job_id", ID, required=False),
        Field("sha256", SHA256, doc="content hash of the weights file"),
        Field("created", TIME),
        Field("active", Bool()),
        Field("metrics", METRICS, required=False, default={}),
    ),
)

LIMITS = Record(
    name="limits",
    fields=(
        Field("max_message_bytes", Int(1, 2**40)),
        Field("max_frames_per_message", Int(2, 2**16)),
        Field("max_candidates", Int(1, 1024)),
        Field("max_frames", Int(1, 10_000), doc="per clip"),
        Field("max_prompt_chars", Int(1, 100_000)),
    ),
)

JOB_EVENT_FIELDS = (
    Field("job_id", ID),
    Field("kind", Str(choices=JOB_KINDS)),
    Field("state", Str(choices=JOB_STATES)),
    Field("step", Int(0, MAX_BUDGET)),
    Field("total", Int(0, MAX_BUDGET)),
    Field("progress", Float(0.0, 1.0)),
    Field("metrics", METRICS, required=False, default={}),
    Field("message", TEXT, required=False),
)


# -- message specs -----------------------------------------------------------------------------

Check = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class MessageSpec:
    type: str
    doc: str
    body: Record
    reply: Record | None = None  # requests only
    state_changing: bool = False  # header must carry an idempotency key
    retry_safe: bool = True  # the client may resend after a timeout (with the same key)
    check: Check | None = None  # cross-field rules of the body, run after the field checks
    reply_check: Check | None = None  # the same for the ok reply body


def _invalid(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_FIELD, f"body.{field}: {message}", field=f"body.{field}")


def _check_ranking(body: dict[str, Any]) -> None:
    both = set(body["ranked"]) & set(body["rejected"])
    if both:
        raise _invalid("rejected", f"clip ids both ranked and rejected: {sorted(both)[:5]}")
    if len(body["ranked"]) + len(body["rejected"]) < 2:
        raise _invalid("ranked", "a ranking needs at least two clips (ranked + rejected)")


def _check_job(body: dict[str, Any]) -> None:
    if body["kind"] == "spl_refine" and body["method"] is not None:
        raise _invalid("method", "only finetune jobs take a method; omit it for spl_refine")
    if body["anchor"] > 0 and (
        body["kind"] != "finetune" or body["method"] not in (None, *ANCHORED_METHODS)
    ):
        raise _invalid(
            "anchor",
            f"only finetune jobs with method {' or '.join(ANCHORED_METHODS)} take an anchor",
        )


def _rec(*fields: Field) -> Record:
    return Record(fields=fields)


_REQUESTS = (
    MessageSpec(
        "hello",
        "First request of a session: versions, the engine session id, what it can do.",
        _rec(
            Field("client", Str(max_len=MAX_ID_CHARS), doc='e.g. "easytune-blender 0.1.0"'),
        ),
        _rec(
            Field("protocol_version", Str(max_len=16)),
            Field("engine_version", Str(max_len=MAX_ID_CHARS)),
            Field("engine_session", ID, doc="changes whenever the engine restarts"),
            Field("capabilities", ListOf(Str(max_len=MAX_ID_CHARS), 64), doc="e.g. generate"),
            Field("models", ListOf(MODEL, 64)),
            Field("device", Str(max_len=MAX_ID_CHARS), doc='"cpu" or "cuda:0"'),
            Field("events", Str(max_len=256), required=False, doc="PUB endpoint for events"),
            Field("fps", Int(1, 1000)),
            Field("joint_names", ListOf(Str(max_len=MAX_ID_CHARS), 64)),
            Field("joint_parents", ListOf(Int(-1, 63), 64)),
            Field("limits", LIMITS),
        ),
    ),
    MessageSpec(
        "list_models",
        "The backbones with their defaults, active checkpoint and adapters.",
        _rec(),
        _rec(Field("models", ListOf(MODEL, 64))),
    ),
    MessageSpec(
        "generate",
        "Sample `candidates` motions for one prompt; each is stored so rankings can refer to it.",
        _rec(
            Field("prompt", PROMPT),
            Field("candidates", Int(1, MAX_CANDIDATES), False, 4),
            Field("length", Int(1, MAX_FRAMES), False, 120, doc=f"frames at {FPS} fps"),
            Field(
                "seed",
                Int(0, MAX_SEED),
                False,
                doc="omitted: the engine picks one (and returns it)",
            ),
            Field("guidance", Float(0.0, MAX_GUIDANCE), False, doc="omitted: the model's default"),
            Field("steps", Int(1, MAX_STEPS), False, doc="omitted: the model's default"),
            Field("sampler", Str(choices=SAMPLERS), False, doc="omitted: the model's default"),
            Field("backbone", NAME, False, doc="omitted: the engine's default model"),
            Field(
                "adapter", NAME, False, doc="LoRA adapter to apply (omitted: the active weights)"
            ),
            Field(
                "rewrite",
                Bool(),
                False,
                True,
                doc="map words outside the model's vocabulary (typos, synonyms) onto words it "
                "knows before generating; false: the prompt goes to the model as typed",
            ),
        ),
        Record(
            fields=(
                Field("clips", ListOf(CLIP, MAX_CANDIDATES, 1)),
                Field("fps", Int(1, 1000)),
                Field("seed", Int(0, MAX_SEED), doc="the seed used; same seed, same motions"),
                Field("sampler", Str(choices=SAMPLERS)),
                Field("steps", Int(1, MAX_STEPS)),
                Field("guidance", Float(0.0, MAX_GUIDANCE)),
                Field("backbone", NAME),
                Field("adapter", NAME, False),
                Field("checkpoint", NAME, False, doc="weights used (omitted: shipped weights)"),
                Field("elapsed_ms", Float(0.0), doc="engine-side time"),
                Field(
                    "interpreted_prompt",
                    PROMPT,
                    False,
                    doc="what the model read, when rewriting changed a word (omitted: as typed)",
                ),
                Field(
                    "substitutions",
                    ListOf(SUBSTITUTION, 64),
                    False,
                    doc="each word rewriting changed, in prompt order (omitted: none)",
                ),
            )
        ),
        retry_safe=False,  # expensive; the client resends only when asked to
    ),
    MessageSpec(
        "submit_ranking",
        "Store an artist's ranking of clips of one prompt; acknowledged after a durable commit.",
        _rec(
            Field("prompt", PROMPT, doc="the prompt the clips were generated for"),
            Field("ranked", ListOf(ID, MAX_CANDIDATES, 1, unique=True), doc="best first"),
            Field("rejected", ListOf(ID, MAX_CANDIDATES, unique=True), False, []),
        ),
        _rec(
            Field("ranking_id", Int(1, 2**53)),
            Field("pairs", Int(0, 1024), doc="preference pairs the ranking gives"),
            Field("total_rankings", Int(0, 2**53)),
        ),
        state_changing=True,
        check=_check_ranking,
    ),
    MessageSpec(
        "list_rankings",
        "A page of stored rankings (ids only), oldest first, after ranking id `after`.",
        _rec(
            Field("after", Int(0, 2**53), False, 0, doc="ranking id to continue after"),
            Field("limit", Int(1, MAX_PAGE), False, 100),
        ),
        _rec(
            Field("rankings", ListOf(RANKING, MAX_PAGE)),
            Field("next_after", Int(0, 2**53), False, doc="omitted: no more pages"),
            Field("total", Int(0, 2**53)),
        ),
    ),
    MessageSpec(
        "export_rankings",
        f"Like list_rankings, with the ranked clips' motions (≤ {MAX_EXPORT_CLIPS} per page; the "
        "engine ends a page early rather than exceed it).",
        _rec(
            Field("after", Int(0, 2**53), False, 0),
            Field("limit", Int(1, MAX_PAGE), False, 8),
        ),
        _rec(
            Field("format", Str(choices=("easytune-rankings",))),
            Field("format_version", Int(1, 1000), doc="of the rankings store (1)"),
            Field("rankings", ListOf(RANKING, MAX_PAGE)),
            Field("clips", ListOf(EXPORT_CLIP, MAX_EXPORT_CLIPS)),
            Field("next_after", Int(0, 2**53), False),
        ),
    ),
    MessageSpec(
        "start_job",
        "Queue a job: SPL refinement of the reward on the rankings, or a fine-tune.",
        _rec(
            Field("kind", Str(choices=JOB_KINDS)),
            Field(
                "method",
                Str(choices=FINETUNE_METHODS),
                False,
                doc="finetune only; omitted: easytune",
            ),
            Field("budget", Int(1, MAX_BUDGET), doc="finetune: trajectories; spl_refine: steps"),
            Field("backbone", NAME, False, doc="omitted: the engine's default model"),
            Field("lora_rank", Int(0, 256), False, 0, doc="0: full fine-tune"),
            Field(
                "anchor",
                Float(0.0, MAX_ANCHOR),
                False,
                0.0,
                doc="finetune, easytune methods: pull toward the base model's x0 (0: off)",
            ),
            Field("checkpoint_name", NAME, False, doc="omitted: the engine names it"),
            Field("activate", Bool(), False, False, doc="activate the checkpoint when finished"),
        ),
        _rec(Field("job", JOB)),
        state_changing=True,
        check=_check_job,
    ),
    MessageSpec(
        "job_status",
        "One job, or the most recent jobs (newest first) when job_id is omitted.",
        _rec(
            Field("job_id", ID, False),
            Field("limit", Int(1, MAX_PAGE), False, 20),
        ),
        _rec(Field("jobs", ListOf(JOB, MAX_PAGE))),
    ),
    MessageSpec(
        "cancel_job",
        "Ask a job to stop at its next step boundary (never waits behind generation).",
        _rec(Field("job_id", ID)),
        _rec(Field("job", JOB, doc='state "cancelling", or final if it had already ended')),
        state_changing=True,
    ),
    MessageSpec(
        "list_checkpoints",
        "Checkpoints and adapters in the model registry, newest first.",
        _rec(Field("backbone", NAME, False, doc="omitted: every backbone")),
        _rec(Field("checkpoints", ListOf(CHECKPOINT, MAX_PAGE))),
    ),
    MessageSpec(
        "activate_checkpoint",
        "Serve generate from this checkpoint (for its backbone) from now on.",
        _rec(Field("name", NAME)),
        _rec(
            Field("backbone", NAME),
            Field("active", NAME),
            Field("previous", NAME, False, doc="omitted: the shipped weights were active"),
        ),
        state_changing=True,
    ),
    MessageSpec(
        "rollback",
        "Re-activate the checkpoint that was active before the current one.",
        _rec(Field("backbone", NAME, False, doc="omitted: the engine's default model")),
        _rec(
            Field("backbone", NAME),
            Field("active", NAME, False, doc="omitted: back to the shipped weights"),
            Field("previous", NAME, False),
        ),
        state_changing=True,
    ),
    MessageSpec(
        "health",
        "Cheap liveness and load check.",
        _rec(),
        _rec(
            Field("status", Str(choices=("ok", "degraded"))),
            Field("uptime_s", Float(0.0)),
            Field("queued_requests", Int(0, 2**31)),
            Field("running_jobs", Int(0, 2**31)),
            Field("device", Str(max_len=MAX_ID_CHARS)),
        ),
    ),
    MessageSpec(
        "shutdown",
        "Stop the engine after answering (loopback peers only; others get forbidden).",
        _rec(),
        _rec(Field("stopping", Bool())),
        state_changing=True,
    ),
)

_EVENTS = (
    MessageSpec(
        "job_started",
        "A queued job began running.",
        Record(fields=JOB_EVENT_FIELDS),
    ),
    MessageSpec(
        "job_progress",
        "A job finished a step (at most a few per second per job).",
        Record(fields=JOB_EVENT_FIELDS),
    ),
    MessageSpec(
        "job_finished",
        "A job reached a final state: finished, failed, cancelled or interrupted.",
        Record(fields=(*JOB_EVENT_FIELDS, Field("checkpoint", NAME, False))),
    ),
    MessageSpec(
        "checkpoint_activated",
        "The weights generate uses changed (activate_checkpoint, rollback, or a job).",
        _rec(Field("backbone", NAME), Field("active", NAME, False), Field("previous", NAME, False)),
    ),
    MessageSpec(
        "engine_stopping",
        "The engine is shutting down; running jobs will be interrupted.",
        _rec(Field("reason", TEXT)),
    ),
)

REQUESTS: Mapping[str, MessageSpec] = MappingProxyType({s.type: s for s in _REQUESTS})
EVENTS: Mapping[str, MessageSpec] = MappingProxyType({s.type: s for s in _EVENTS})

# The body of every reply whose status is "error" or "cancelled", whatever the request type.
ERROR_BODY = Record(
    name="error",
    fields=(
        Field("code", Str(max_len=MAX_ID_CHARS), doc="an ErrorCode value"),
        Field("message", TEXT, doc="what was wrong and what is valid"),
        Field("field", Str(max_len=200), False, doc='dotted path, e.g. "body.length"'),
    ),
)
