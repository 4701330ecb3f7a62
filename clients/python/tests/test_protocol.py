"""The codec against docs/protocol.md: what the client sends, and what it accepts from a head.

"A frame that is not a msgpack map, has bytes after the map, lacks `v` or `type`, has a `v`
other than `1`, an unknown `type`, a missing required field or a field of the wrong type, is
malformed: it is dropped, counted, and logged."
"""

import msgpack
import pytest

from taskpipe import protocol
from taskpipe.protocol import Accepted, Error, MalformedMessage, State, decode


def pack(**fields):
    return msgpack.packb({"v": 1, **fields}, use_bin_type=True)


def test_submit_carries_only_the_fields_given():
    msg = msgpack.unpackb(protocol.encode_submit(7, b"x"), raw=False)
    assert msg == {"v": 1, "type": "submit", "req": 7, "payload": b"x"}
    msg = msgpack.unpackb(protocol.encode_submit(8, b"\0\xff", key="k", delay_ms=1500,
                                                 not_before_us=5, notify=False), raw=False)
    assert msg == {"v": 1, "type": "submit", "req": 8, "payload": b"\0\xff", "key": "k",
                   "delay_ms": 1500, "not_before_us": 5, "notify": False}


def test_payload_is_sent_as_bin_and_key_as_str():
    raw = msgpack.unpackb(protocol.encode_submit(1, b"abc", key="k"), raw=True)
    assert raw[b"payload"] == b"abc" and isinstance(raw[b"payload"], bytes)
    # use_bin_type: the payload is a msgpack bin (0xc4), the key a str (0xa1 'k').
    frame = protocol.encode_submit(1, b"abc", key="k")
    assert b"\xc4\x03abc" in frame and b"\xa1k" in frame


def test_status_and_cancel():
    assert msgpack.unpackb(protocol.encode_status(3, id=9, wait_ms=100), raw=False) == {
        "v": 1, "type": "status", "req": 3, "id": 9, "wait_ms": 100}
    assert msgpack.unpackb(protocol.encode_status(4, key="a"), raw=False) == {
        "v": 1, "type": "status", "req": 4, "key": "a"}
    assert msgpack.unpackb(protocol.encode_cancel(5, 11), raw=False) == {
        "v": 1, "type": "cancel", "req": 5, "id": 11}


def test_accepted():
    assert decode(pack(type="accepted", req=1, id=2, created=True, state="queued")) == \
        Accepted(req=1, id=2, created=True, state="queued")


def test_done_is_a_pushed_state_with_defaults():
    msg = decode(pack(type="done", id=5, state="ok", status="ok", exit_code=0, stdout=b"hi"))
    assert isinstance(msg, State) and msg.pushed and msg.req is None
    assert (msg.stdout, msg.exit_code, msg.stderr, msg.signal, msg.attempts) == (
        b"hi", 0, b"", None, 0)


def test_state_answer_and_str_for_bytes():
    msg = decode(pack(type="state", req=3, id=5, state="failed", stdout="text", signal=9,
                      exit_code=None, worker="h:1", key="k"))
    assert not msg.pushed and msg.stdout == b"text" and msg.signal == 9 and msg.key == "k"


def test_an_unknown_key_may_come_back_without_an_id():
    assert decode(pack(type="state", req=1, state="unknown")).id == 0
    assert decode(pack(type="state", req=1, id=0, state="unknown")).id == 0
    with pytest.raises(MalformedMessage):
        decode(pack(type="state", req=1, id=0, state="queued"))
    with pytest.raises(MalformedMessage):
        decode(pack(type="state", req=1, state="ok"))


def test_error_with_and_without_id():
    assert decode(pack(type="error", req=1, code="conflict", message="m", id=4)) == \
        Error(req=1, code="conflict", message="m", id=4)
    assert decode(pack(type="error", req=1, code="brand_new", message="m")).code == "brand_new"


def test_unknown_fields_and_non_string_keys_are_ignored():
    frame = msgpack.packb({"v": 1, "type": "accepted", "req": 1, "id": 2, "created": False,
                           "state": "ok", "later": [1, 2], 7: "x"}, use_bin_type=True)
    assert decode(frame).id == 2


@pytest.mark.parametrize("frame, why", [
    (b"", "empty frame"),
    (b"\xc1", "never-used msgpack byte"),
    (msgpack.packb([1, 2]), "not a map"),
    (pack(type="accepted", req=1, id=2, created=True, state="q") + b"\x00", "bytes after the map"),
    (msgpack.packb({"type": "done", "id": 1, "state": "ok"}), "no v"),
    (msgpack.packb({"v": 1, "id": 1, "state": "ok"}), "no type"),
    (msgpack.packb({"v": 2, "type": "done", "id": 1, "state": "ok"}), "v 2"),
    (msgpack.packb({"v": True, "type": "done", "id": 1, "state": "ok"}), "v true"),
    (pack(type="task", id=1), "a type the producer never gets"),
    (pack(type="accepted", req=1, id=2, created=True), "no state"),
    (pack(type="accepted", req=1, id=0, created=True, state="queued"), "id 0"),
    (pack(type="accepted", req=-1, id=2, created=True, state="queued"), "negative req"),
    (pack(type="accepted", req=1, id=2, created=1, state="queued"), "created not a bool"),
    (pack(type="done", id=1, state="ok", stdout=5), "stdout not bytes"),
    (pack(type="done", id=1, state="ok", exit_code="0"), "exit_code a string"),
    (pack(type="done", id=1, state="ok", exit_code=True), "exit_code a bool"),
    (pack(type="state", id=1, state="ok"), "a state answer without req"),
    (pack(type="error", req=1, code="full"), "error without message"),
    (msgpack.packb({"v": 1, "type": "done", "id": 1, "state": "ok",
                    "x": msgpack.ExtType(1, b"a")}), "an ext type"),
    (msgpack.packb({"v": 1, "type": "done", "id": 1, "state": "ok",
                    **{f"f{i}": i for i in range(70)}}), "more than 64 entries"),
    (b"\x84\xa1v\x01\xa4type\xa4done\xa2id\x01\xa5state\xa2\xff\xfe", "a str that is not UTF-8"),
])
def test_malformed_frames_are_refused(frame, why):
    if why == "a str that is not UTF-8":  # the same frame with valid UTF-8 is fine
        assert decode(frame.replace(b"\xff\xfe", b"ok")).state == "ok"
    with pytest.raises(MalformedMessage):
        decode(frame)


def test_key_and_id_checks():
    protocol.check_key("a" * 256)
    protocol.check_key("é" * 128)
    for bad in ("", "a" * 257, "é" * 129):
        with pytest.raises(ValueError):
            protocol.check_key(bad)
    with pytest.raises(TypeError):
        protocol.check_key(b"bytes")
    for bad in (0, -1, 1.0, True, 1 << 64):
        with pytest.raises(ValueError):
            protocol.check_id(bad)
