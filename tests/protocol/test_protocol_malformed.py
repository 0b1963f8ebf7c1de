"""Hostile and malformed input: every failure is a ProtocolError with the right code.

Ends with a seeded fuzz loop over mutated frames of valid messages that asserts decode either
returns a message or raises ProtocolError, never anything else.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import msgpack
import numpy as np
import pytest

from easytune_protocol import (
    ErrorCode,
    ProtocolError,
    codec,
    decode,
    decode_event,
    encode,
    encode_event,
    event,
    reply,
    request,
)
from easytune_protocol.examples import clip, examples

EX = examples()
C = ErrorCode


def frames_of(type_: str = "generate", body: dict | None = None, **header: Any) -> list[bytes]:
    """Wire frames of a request, with header fields overridden (no validation on the way)."""
    req = request("health", {}, session="s", idempotency_key="k1")
    h = msgpack.unpackb(encode(req)[0]) | {"type": type_} | header
    return [msgpack.packb(h), msgpack.packb(body if body is not None else {})]


def gen_reply_frames(**clip_changes: Any) -> tuple[dict, dict, list[bytes]]:
    """(header, body, frames) of a one-clip generate reply, as plain msgpack objects."""
    c = clip("clip-1", 20)
    rep = reply(
        request("generate", {"prompt": "p"}, session="s"),
        EX["generate"].reply | {"clips": [c]},
        engine_session="e",
    )
    frames = [bytes(memoryview(f)) for f in encode(rep)]
    header, body = msgpack.unpackb(frames[0]), msgpack.unpackb(frames[1])
    body["clips"][0].update(clip_changes)
    return header, body, frames


def error_of(frames: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(frames)
    return info.value


def code_of(frames: Any) -> ErrorCode:
    return error_of(frames).code


# -- framing and msgpack ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "frames",
    [b"abc", [], [b"\x80"], [b"", b"\x80"], ["header", "body"], [1, 2], None],
    ids=["bytes", "empty", "one-frame", "empty-header", "str-frames", "int-frames", "none"],
)
def test_not_a_message(frames: Any) -> None:
    assert code_of(frames) == C.MALFORMED


def test_random_bytes() -> None:
    rng = random.Random(0)
    for _ in range(200):
        frames = [rng.randbytes(rng.randrange(1, 64)) for _ in range(rng.randrange(2, 5))]
        assert code_of(frames) in set(ErrorCode)


def test_truncated_msgpack() -> None:
    good = frames_of("health")
    err = error_of([good[0][:-3], good[1]])
    assert err.code == C.MALFORMED and "truncated" in err.message
    big = frames_of("generate", {"prompt": "a person waves"})
    assert code_of([big[0], big[1][:-2]]) == C.MALFORMED


def test_extra_data_after_the_map() -> None:
    good = frames_of("health")
    assert code_of([good[0] + b"\xc0", good[1]]) == C.MALFORMED


@pytest.mark.parametrize("obj", [[1, 2], "header", 7, None])
def test_header_and_body_must_be_maps(obj: Any) -> None:
    good = frames_of("health")
    assert code_of([msgpack.packb(obj), good[1]]) == C.MALFORMED
    assert code_of([good[0], msgpack.packb(obj)]) == C.MALFORMED


def test_non_string_map_keys() -> None:
    good = frames_of("health")
    body = msgpack.packb({1: "x"}, strict_types=False)
    assert code_of([good[0], body]) == C.MALFORMED
    assert code_of([good[0], msgpack.packb({b"prompt": "x"})]) == C.MALFORMED


def test_ext_types_are_refused() -> None:
    good = frames_of("health")
    body = msgpack.packb({"x": msgpack.ExtType(5, b"payload")})
    assert code_of([good[0], body]) == C.MALFORMED
    stamp = msgpack.packb({"x": msgpack.Timestamp(1, 0)})
    assert code_of([good[0], stamp]) == C.MALFORMED


@pytest.mark.parametrize("depth", [11, 50, 5000])
def test_deep_nesting(depth: int) -> None:
    good = frames_of("health")
    nested = b"\x91" * depth + b"\x00"  # fixarray of one element, depth times
    body = b"\x81\xa1x" + nested  # {"x": [[[...0...]]]}
    assert code_of([good[0], body]) == C.TOO_LARGE


def test_nesting_within_the_limit_is_fine() -> None:
    good = frames_of("health")
    body = b"\x81\xa1x" + b"\x91" * 8 + b"\x00"  # depth 9 in all
    assert decode([good[0], body]).type == "health"


@pytest.mark.parametrize(
    "declared",
    [
        b"\xdb\xff\xff\xff\xff",  # str 32 of 4 GiB
        b"\xc6\xff\xff\xff\xff",  # bin 32 of 4 GiB
        b"\xdd\xff\xff\xff\xff",  # array 32 of 4 G items
        b"\xdf\xff\xff\xff\xff",  # map 32 of 4 G entries
    ],
)
def test_huge_declared_msgpack_sizes(declared: bytes) -> None:
    good = frames_of("health")
    assert code_of([good[0], b"\x81\xa1x" + declared + b"\x00" * 8]) == C.MALFORMED


def test_too_many_frames() -> None:
    good = frames_of("health")
    err = error_of(good + [b"x"] * (codec.MAX_FRAMES - 1))
    assert err.code == C.TOO_LARGE and str(codec.MAX_FRAMES) in err.message


def test_oversized_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    good = frames_of("health")
    assert code_of([good[0] + b"\x00" * codec.MAX_HEADER_BYTES, good[1]]) == C.TOO_LARGE
    monkeypatch.setattr(codec, "MAX_MESSAGE_BYTES", 1000)
    assert code_of([good[0], good[1], b"\x00" * 1000]) == C.TOO_LARGE


# -- header ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.2", "1.0", None, 0.1, ""])
def test_wrong_version(version: Any) -> None:
    err = error_of(frames_of("health", protocol=version))
    assert err.code == C.UNSUPPORTED_VERSION and "0.1" in err.message
    assert err.request_id  # the engine can still address its error reply


def test_unknown_types() -> None:
    err = error_of(frames_of("format_disk"))
    assert err.code == C.UNKNOWN_TYPE and "generate" in err.message
    assert code_of(frames_of("job_progress")) == C.UNKNOWN_TYPE  # an event type as a request
    ev = encode(event("job_progress", EX["job_progress"].request, engine_session="e", seq=1))
    h = msgpack.unpackb(ev[0]) | {"type": "generate"}
    assert code_of([msgpack.packb(h), ev[1]]) == C.UNKNOWN_TYPE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "push"}, "header.kind"),
        ({"id": "../../etc"}, "header.id"),
        ({"id": "x" * 65}, "header.id"),
        ({"id": 5}, "header.id"),
        ({"time": "now"}, "header.time"),
        ({"session": None}, "header.session"),
    ],
)
def test_bad_header_fields(change: dict, field: str) -> None:
    err = error_of(frames_of("health", **change))
    assert err.code == C.INVALID_FIELD and err.field == field


def test_state_changing_request_needs_an_idempotency_key() -> None:
    body = {"prompt": "p", "ranked": ["a", "b"]}
    err = error_of(frames_of("submit_ranking", body, idempotency_key=None))
    assert err.code == C.INVALID_FIELD and err.field == "header.idempotency_key"
    assert decode(frames_of("submit_ranking", body)).header.idempotency_key == "k1"


def test_event_topic_must_match() -> None:
    frames = encode_event(event("engine_stopping", {"reason": "bye"}, engine_session="e", seq=1))
    with pytest.raises(ProtocolError):
        decode_event([b"job_progress", *frames[1:]])
    with pytest.raises(ProtocolError):
        decode_event(frames[1:])


# -- fields and limits -----------------------------------------------------------------------


def test_prompt_and_candidate_limits() -> None:
    ok = {"prompt": "p" * 400, "candidates": 16, "length": 196, "guidance": 50, "seed": 2**31 - 1}
    assert decode(frames_of("generate", ok)).body["candidates"] == 16
    low = {"prompt": "p", "candidates": 1, "length": 1, "guidance": 0.0, "seed": 0}
    assert decode(frames_of("generate", low)).body["length"] == 1
    for change, field in [
        ({"prompt": "p" * 401}, "body.prompt"),
        ({"prompt": ""}, "body.prompt"),
        ({"prompt": " \t\n"}, "body.prompt"),
        ({"prompt": None}, "body.prompt"),
        ({"prompt": 5}, "body.prompt"),
        ({"candidates": 17}, "body.candidates"),
        ({"candidates": 0}, "body.candidates"),
        ({"candidates": "4"}, "body.candidates"),
        ({"candidates": 4.0}, "body.candidates"),
        ({"candidates": True}, "body.candidates"),
        ({"length": 197}, "body.length"),
        ({"guidance": 50.001}, "body.guidance"),
        ({"guidance": float("nan")}, "body.guidance"),
        ({"guidance": float("inf")}, "body.guidance"),
        ({"seed": 2**31}, "body.seed"),
        ({"seed": -1}, "body.seed"),
        ({"seed": 2**64 - 1}, "body.seed"),
        ({"sampler": "euler"}, "body.sampler"),
        ({"backbone": "../weights"}, "body.backbone"),
        ({"adapter": "/tmp/x"}, "body.adapter"),
    ]:
        err = error_of(frames_of("generate", ok | change))
        assert (err.code, err.field) == (C.INVALID_FIELD, field), change
        assert err.message.startswith(field)


def test_error_messages_say_what_is_valid() -> None:
    err = error_of(frames_of("generate", {"prompt": "p", "sampler": "euler"}))
    assert "ddpm, ddim, lcm" in err.message
    err = error_of(frames_of("generate", {"prompt": "p", "length": 500}))
    assert "1..196" in err.message and "500" in err.message


def test_lists_are_bounded() -> None:
    ids = [f"c{i}" for i in range(17)]
    err = error_of(frames_of("submit_ranking", {"prompt": "p", "ranked": ids}))
    assert err.code == C.INVALID_FIELD and "1..16" in err.message


# -- arrays ------------------------------------------------------------------------------------


def _with(header: dict, body: dict, frames: list[bytes], extra: list[bytes] | None = None):
    return [msgpack.packb(header), msgpack.packb(body), *(extra or frames[2:])]


@pytest.mark.parametrize("dtype", ["object", "float16", "<f4", "complex64", "O", "U10", 7, None])
def test_bad_dtypes(dtype: Any) -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["joints"][0] = dtype
    assert code_of(_with(header, body, frames)) == C.BAD_ARRAY


def test_dtype_must_be_one_the_field_allows() -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["joints"] = ["float64", [20, 22, 3], 2]
    frames[2] = np.zeros((20, 22, 3)).tobytes()
    err = error_of(_with(header, body, frames))
    assert err.code == C.BAD_ARRAY and "float32" in err.message


@pytest.mark.parametrize(
    "shape",
    [[20, 22, 4], [20, 22], [10**12, 22, 3], [-20, 22, 3], [20.0, 22, 3], "20,22,3", [1] * 9],
)
def test_bad_shapes(shape: Any) -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["joints"][1] = shape
    assert code_of(_with(header, body, frames)) == C.BAD_ARRAY


def test_shape_and_bytes_mismatch() -> None:
    *_, frames = gen_reply_frames()
    frames[2] = frames[2][:-4]
    err = error_of(frames)
    assert err.code == C.BAD_ARRAY and "bytes" in err.message
    *_, frames = gen_reply_frames()
    frames[2] = frames[2] + b"\x00" * 4
    assert code_of(frames) == C.BAD_ARRAY


def test_the_first_axis_must_agree_across_a_clip() -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["root_translation"][1] = [19, 3]
    frames[4] = frames[4][: 19 * 3 * 4]
    assert code_of(_with(header, body, frames)) == C.BAD_ARRAY
    header, body, frames = gen_reply_frames(frames=21)  # T = 21 but the arrays have 20 rows
    err = error_of(_with(header, body, frames))
    assert err.code == C.BAD_ARRAY and "T = 21" in err.message


@pytest.mark.parametrize("index", [0, 1, 6, 99, -1, "2", True, None])
def test_bad_frame_index(index: Any) -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["joints"][2] = index
    assert code_of(_with(header, body, frames)) in (C.BAD_ARRAY, C.MALFORMED)


def test_frames_are_used_once_and_all_used() -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["rotations"] = ["float32", [20, 22, 3], 2]  # joints' frame again
    assert code_of(_with(header, body, frames)) == C.BAD_ARRAY
    header, body, frames = gen_reply_frames()
    err = error_of([*frames, b"\x00" * 8])
    assert err.code == C.MALFORMED and "not referenced" in err.message


def test_bool_arrays_hold_only_zero_and_one() -> None:
    header, body, frames = gen_reply_frames()
    body["clips"][0]["foot_contacts"][0] = "bool"
    frames[5] = b"\x02" + frames[5][1:]
    assert code_of(_with(header, body, frames)) == C.BAD_ARRAY


def test_an_array_where_none_is_declared() -> None:
    body = {"prompt": ["float32", [3], 2]}
    frames = [*frames_of("generate", body), struct.pack("<3f", 1, 2, 3)]
    assert code_of(frames) == C.INVALID_FIELD


# -- fuzz ----------------------------------------------------------------------------------------

HOSTILE_VALUES: list[Any] = [
    None, True, -1, 0, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, float("nan"), float("-inf"),
    "", "x" * 70, "../../../etc/passwd", "\x00\udcff".encode("utf-8", "surrogatepass"),
    b"\xff" * 9, [], [None], ["float32", [3], 2], ["bool", [2**40], 2], {}, {"a": {"b": []}},
    [[[[[[[[[[[[1]]]]]]]]]]]],
]  # fmt: skip


def valid_messages() -> list[list[bytes]]:
    out = []
    for type_, ex in EX.items():
        if ex.reply is None:
            msg = event(type_, ex.request, engine_session="e", seq=1)
            out.append(encode(msg))
            continue
        req = request(type_, ex.request, session="s")
        out.append(encode(req))
        out.append(encode(reply(req, ex.reply, engine_session="e")))
    return [[bytes(memoryview(f)) for f in m] for m in out]


def mutate_value(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """Replace one randomly chosen value inside obj with a hostile one."""
    if isinstance(obj, dict) and obj and depth < 8:
        key = rng.choice(list(obj))
        if rng.random() < 0.15:
            return {k: v for k, v in obj.items() if k != key}  # drop a field
        return obj | {key: mutate_value(rng, obj[key], depth + 1)}
    if isinstance(obj, list) and obj and depth < 8:
        i = rng.randrange(len(obj))
        if rng.random() < 0.1:
            return obj * rng.randrange(2, 40)  # too many items
        return [*obj[:i], mutate_value(rng, obj[i], depth + 1), *obj[i + 1 :]]
    return rng.choice(HOSTILE_VALUES)


def mutate(rng: random.Random, frames: list[bytes]) -> list[Any]:
    frames = list(frames)
    if not frames:
        return [rng.randbytes(8)]
    op = rng.randrange(9)
    i = rng.randrange(len(frames))
    if op == 0 and frames[i]:  # flip bytes
        b = bytearray(frames[i])
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        frames[i] = bytes(b)
    elif op == 1:  # truncate
        frames[i] = frames[i][: rng.randrange(len(frames[i]) + 1)]
    elif op == 2:  # insert garbage
        at = rng.randrange(len(frames[i]) + 1)
        frames[i] = frames[i][:at] + rng.randbytes(rng.randrange(1, 16)) + frames[i][at:]
    elif op == 3:  # drop, duplicate or swap frames
        j = rng.randrange(len(frames))
        choice = rng.randrange(3)
        if choice == 0:
            del frames[i]
        elif choice == 1:
            frames.insert(i, frames[j])
        else:
            frames[i], frames[j] = frames[j], frames[i]
    elif op == 4:  # a random frame
        frames[i] = rng.randbytes(rng.randrange(0, 64))
    elif op in (5, 6, 7) and len(frames) >= 2:  # a hostile value inside the header or body
        k = 0 if op == 5 else 1
        try:
            obj = msgpack.unpackb(frames[k])
        except Exception:  # already mangled by an earlier mutation
            return frames
        frames[k] = msgpack.packb(mutate_value(rng, obj))
    else:  # a few frames too many
        frames += [b"\x00" * 4] * rng.randrange(1, 140)
    return frames


def test_fuzz_only_protocol_errors() -> None:
    rng = random.Random(20261126)
    seeds = valid_messages()
    codes: dict[str, int] = {}
    accepted = 0
    for _ in range(4000):
        frames = mutate(rng, rng.choice(seeds))
        if rng.random() < 0.3:
            frames = mutate(rng, frames)
        try:
            decode(frames)
            accepted += 1
        except ProtocolError as exc:
            assert exc.code in set(ErrorCode)
            codes[exc.code] = codes.get(exc.code, 0) + 1
    # the mutations reach every layer of the decoder
    for code in (C.MALFORMED, C.TOO_LARGE, C.INVALID_FIELD, C.BAD_ARRAY, C.UNSUPPORTED_VERSION):
        assert codes.get(code, 0) > 0, codes
    assert accepted < 4000 // 2
