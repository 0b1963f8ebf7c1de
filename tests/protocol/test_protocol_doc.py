"""protocol/PROTOCOL.md and the code agree: version, message names, generated tables."""

from __future__ import annotations

import re
from pathlib import Path

from easytune_protocol import EVENTS, PROTOCOL_VERSION, REQUESTS
from easytune_protocol.doc import BEGIN, END, render, splice
from easytune_protocol.errors import ErrorCode

DOC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"


def test_document_quotes_the_version() -> None:
    found = re.search(r"^Protocol version: `([^`]+)`$", DOC.read_text(), re.MULTILINE)
    assert found, "PROTOCOL.md must state 'Protocol version: `X`' on a line of its own"
    assert found.group(1) == PROTOCOL_VERSION


def test_document_names_every_message_and_no_other() -> None:
    text = DOC.read_text()
    assert set(re.findall(r"^### request `(\w+)`$", text, re.MULTILINE)) == set(REQUESTS)
    assert set(re.findall(r"^### event `(\w+)`$", text, re.MULTILINE)) == set(EVENTS)


def test_document_lists_every_error_code() -> None:
    text = DOC.read_text()
    codes = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE)) & {c.value for c in ErrorCode}
    assert codes == {c.value for c in ErrorCode} - {"timeout", "engine_restarted"}
    assert "`timeout`" in text and "`engine_restarted`" in text


def test_generated_part_is_up_to_date() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text
    assert splice(text, render()) == text, (
        "PROTOCOL.md is stale: run python -m easytune_protocol.doc --write protocol/PROTOCOL.md"
    )


def test_a_client_written_from_the_document_alone() -> None:
    """Frames built and read with plain msgpack and numpy, as PROTOCOL.md describes them."""
    import msgpack
    import numpy as np

    from easytune_protocol import decode, encode, reply
    from easytune_protocol.examples import examples

    header = {
        "protocol": PROTOCOL_VERSION,
        "kind": "request",
        "type": "generate",
        "id": "r-1",
        "time": 1764150000.0,
        "session": "c-1",
    }
    body = {"prompt": "a person waves", "candidates": 1, "length": 40}
    req = decode([msgpack.packb(header), msgpack.packb(body)])
    assert req.body["length"] == 40

    ex = examples()["generate"].reply
    frames = encode(reply(req, ex, engine_session="e-1"))
    h, b = msgpack.unpackb(frames[0]), msgpack.unpackb(frames[1])
    assert (h["kind"], h["reply_to"], h["status"]) == ("reply", "r-1", "ok")
    dtype, shape, index = b["clips"][0]["joints"]
    joints = np.frombuffer(frames[index], dtype="<" + np.dtype(dtype).str[1:]).reshape(shape)
    np.testing.assert_array_equal(joints, ex["clips"][0]["joints"])
