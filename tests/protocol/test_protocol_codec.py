"""Round trips of every message type through encode/decode, with realistic payloads."""

from __future__ import annotations

import numpy as np
import pytest

from easytune_protocol import (
    EVENTS,
    REQUESTS,
    ErrorCode,
    ProtocolError,
    decode,
    decode_event,
    encode,
    encode_event,
    error_reply,
    event,
    reply,
    request,
)
from easytune_protocol.catalogue import MAX_CANDIDATES, MAX_FRAMES
from easytune_protocol.examples import clip, examples
from easytune_protocol.schema import Record

EXAMPLES = examples()


def same(a: object, b: object) -> bool:
    """Deep equality; arrays must match in dtype, shape and bits."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {k for k in a.keys() | b.keys() if a.get(k) is not None or b.get(k) is not None}
        return all(same(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def with_defaults(body: dict, record: Record) -> dict:
    """What decode returns for `body`: every declared field, defaults where absent."""
    return {f.name: f.default for f in record.fields} | body


def as_bytes(frames: list) -> list[bytes]:
    return [bytes(memoryview(f)) for f in frames]


def test_every_message_has_an_example() -> None:
    assert set(EXAMPLES) == set(REQUESTS) | set(EVENTS)
    assert not set(REQUESTS) & set(EVENTS)
    assert all(s.reply is not None for s in REQUESTS.values())


@pytest.mark.parametrize("type_", sorted(REQUESTS))
def test_request_and_reply_round_trip(type_: str) -> None:
    ex = EXAMPLES[type_]
    req = request(type_, ex.request, session="client-1")
    got = decode(as_bytes(encode(req)))
    assert got.header == req.header
    assert same(got.body, with_defaults(ex.request, REQUESTS[type_].body))
    if REQUESTS[type_].state_changing:
        assert got.header.idempotency_key

    rep = reply(req, ex.reply, engine_session="engine-1")
    got = decode(as_bytes(encode(rep)))
    assert got.header == rep.header
    assert got.header.reply_to == req.header.id and got.header.status == "ok"
    assert same(got.body, with_defaults(ex.reply, REQUESTS[type_].reply))


@pytest.mark.parametrize("type_", sorted(EVENTS))
def test_event_round_trip_with_topic(type_: str) -> None:
    ev = event(type_, EXAMPLES[type_].request, engine_session="engine-1", seq=3)
    frames = encode_event(ev)
    assert bytes(frames[0]) == type_.encode()
    got = decode_event(as_bytes(frames))
    assert got.header == ev.header and same(got.body, ev.body)


def test_generate_reply_arrays_are_bit_exact_and_read_only() -> None:
    rng = np.random.default_rng(0)
    clips = [clip(f"clip-{i}", MAX_FRAMES, seed=i) for i in range(MAX_CANDIDATES)]
    clips[0]["joints"][0, 0] = [np.nan, -0.0, np.inf]  # bits, not values
    clips[1]["foot_contacts"] = rng.random((MAX_FRAMES, 4)) < 0.5  # bool is allowed too
    body = EXAMPLES["generate"].reply | {"clips": clips}
    rep = reply(request("generate", {"prompt": "x"}, session="s"), body, engine_session="e")
    frames = encode(rep)
    assert len(frames) == 2 + 4 * MAX_CANDIDATES
    got = decode(frames)
    for sent, back in zip(clips, got.body["clips"], strict=True):
        for name in ("joints", "rotations", "root_translation", "foot_contacts"):
            assert same(sent[name], back[name]), name
            assert not back[name].flags.writeable
    assert got.body["clips"][1]["foot_contacts"].dtype == np.bool_


def test_big_endian_and_strided_arrays_are_sent_little_endian_c_order() -> None:
    j = clip("c", 10)
    j["joints"] = np.asfortranarray(j["joints"].astype(">f4"))
    body = EXAMPLES["generate"].reply | {"clips": [j]}
    rep = reply(request("generate", {"prompt": "x"}, session="s"), body, engine_session="e")
    back = decode(encode(rep)).body["clips"][0]["joints"]
    assert back.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(back, j["joints"])


def test_defaults_are_filled_and_unknown_fields_dropped() -> None:
    req = request("generate", {"prompt": "a person waves", "mood": "happy"}, session="s")
    body = decode(encode(req)).body
    assert body["candidates"] == 4 and body["length"] == 120 and body["seed"] is None
    assert "mood" not in body


def test_mutable_defaults_are_not_shared() -> None:
    body = {"prompt": "p", "ranked": ["a", "b"]}
    first = decode(encode(request("submit_ranking", body, session="s"))).body
    first["rejected"].append("c")
    again = decode(encode(request("submit_ranking", body, session="s"))).body
    assert again["rejected"] == []


def test_unknown_header_fields_are_ignored() -> None:
    import msgpack

    frames = as_bytes(encode(request("health", {}, session="s")))
    header = msgpack.unpackb(frames[0]) | {"priority": 9, "trace": {"a": 1}}
    got = decode([msgpack.packb(header), frames[1]])
    assert got.header.type == "health"


def test_error_reply_round_trip() -> None:
    req = request("generate", {"prompt": "p"}, session="s")
    err = ProtocolError(ErrorCode.NOT_FOUND, "backbone 'x' not found", field="body.backbone")
    got = decode(encode(error_reply(err, engine_session="e", req=req)))
    assert got.header.status == "error" and got.header.reply_to == req.header.id
    assert got.body == {"code": "not_found", "message": err.message, "field": "body.backbone"}


def test_error_reply_to_an_unreadable_request() -> None:
    err = ProtocolError(ErrorCode.MALFORMED, "header: truncated msgpack")
    got = decode(encode(error_reply(err, engine_session="e")))
    assert got.header.type == "error" and got.header.reply_to == ""


def test_error_reply_keeps_the_id_of_an_unknown_type() -> None:
    frames = encode(request("health", {}, session="s"))
    import msgpack

    header = msgpack.unpackb(frames[0]) | {"type": "teleport"}
    with pytest.raises(ProtocolError) as info:
        decode([msgpack.packb(header), frames[1]])
    assert info.value.code == ErrorCode.UNKNOWN_TYPE and info.value.request_id == header["id"]
    rep = decode(encode(error_reply(info.value, engine_session="e")))
    assert rep.header.type == "error" and rep.header.reply_to == header["id"]
    assert "valid: hello" in rep.body["message"]


def test_encode_rejects_invalid_bodies_before_sending() -> None:
    with pytest.raises(ProtocolError) as info:
        encode(request("generate", {"prompt": "p", "candidates": 17}, session="s"))
    assert info.value.code == ErrorCode.INVALID_FIELD
    assert info.value.field == "body.candidates"
    assert "1..16" in str(info.value)


def test_clip_frames_must_match_the_arrays() -> None:
    c = clip("c", 30) | {"frames": 31}
    body = EXAMPLES["generate"].reply | {"clips": [c]}
    with pytest.raises(ProtocolError) as info:
        encode(reply(request("generate", {"prompt": "x"}, session="s"), body, engine_session="e"))
    assert info.value.code == ErrorCode.BAD_ARRAY and "T" in info.value.message


def test_ranking_cross_field_rules() -> None:
    for body, words in (
        ({"prompt": "p", "ranked": ["a"], "rejected": ["a"]}, "both ranked and rejected"),
        ({"prompt": "p", "ranked": ["a"]}, "at least two clips"),
        ({"prompt": "p", "ranked": ["a", "a"]}, "unique"),
    ):
        with pytest.raises(ProtocolError, match=words) as info:
            encode(request("submit_ranking", body, session="s"))
        assert info.value.code == ErrorCode.INVALID_FIELD


def test_spl_refine_takes_no_method() -> None:
    with pytest.raises(ProtocolError, match="only finetune"):
        encode(
            request(
                "start_job", {"kind": "spl_refine", "method": "draft", "budget": 5}, session="s"
            )
        )


def test_only_step_aware_finetunes_take_an_anchor() -> None:
    ok = {"kind": "finetune", "budget": 5, "anchor": 5.0}
    assert decode(encode(request("start_job", ok, session="s"))).body["anchor"] == 5.0
    omitted = decode(encode(request("start_job", {"kind": "finetune", "budget": 5}, session="s")))
    assert omitted.body["anchor"] == 0.0
    for body, words in (
        ({"kind": "spl_refine", "budget": 5, "anchor": 1.0}, "only finetune jobs with method"),
        ({"kind": "finetune", "method": "draft", "budget": 5, "anchor": 1.0}, "easytune or"),
        ({"kind": "finetune", "budget": 5, "anchor": -1.0}, "anchor"),
    ):
        with pytest.raises(ProtocolError, match=words) as info:
            encode(request("start_job", body, session="s"))
        assert info.value.code == ErrorCode.INVALID_FIELD
    draft = {"kind": "finetune", "method": "draft", "budget": 5, "anchor": 0.0}
    assert decode(encode(request("start_job", draft, session="s"))).body["method"] == "draft"
