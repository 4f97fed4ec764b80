"""A daemon's wire protocol (the machine-wide daemon's; a personal daemon's owner speaks it too, for
`runai submit`): one request per connection over a Unix stream socket.

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The client sends one
request frame `{"version": 1, "op": NAME, "args": {...}}`; the server answers with one frame
`{"ok": true, "result": ...}` or `{"ok": false, "error": {"kind", "message", "hint"}}`, or, for a
streaming operation (`logs`), with any number of `{"line": TEXT}` frames ended by a result or an
error frame. The caller's identity is not in the request: the server takes it from the kernel.

Records travel as the JSON of the pydantic models in `backends/api.py` and `model.py`, except what
`runai submit` and `runai list` exchange (`submit_flags`, `job_summaries`): plain values, which
their client reads without loading the models (a named tuple travels as a JSON array).
"""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import Any

from ...errors import NotFoundError, OperationalError, RunaiLiteError, UserError

VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024
_LENGTH = struct.Struct(">I")

_ERROR_KINDS: dict[str, type[RunaiLiteError]] = {
    "not-found": NotFoundError, "user": UserError, "operational": OperationalError}


class ProtocolError(OperationalError):
    """The other end spoke something else than this protocol (or hung up mid-frame)."""


def send(conn: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"a message of {len(body)} bytes is over the protocol's limit of {MAX_FRAME_BYTES}")
    conn.sendall(_LENGTH.pack(len(body)) + body)


def receive(conn: socket.socket) -> dict[str, Any] | None:
    """The next frame, or None when the other end closed the connection between frames."""
    header = _read_exactly(conn, _LENGTH.size, allow_eof=True)
    if header is None:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"a frame announced {length} bytes, over the protocol's limit of {MAX_FRAME_BYTES}")
    body = _read_exactly(conn, length, allow_eof=False)
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"a frame is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame is not a JSON object")
    return message


def _read_exactly(conn: socket.socket, size: int, allow_eof: bool) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            if allow_eof and left == size:
                return None
            raise ProtocolError("the connection closed in the middle of a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def connect(socket_path: Path) -> socket.socket:
    """A connection to the daemon listening at `socket_path`; the `OSError` of a failed connect is
    the caller's to word (nothing listening, no such socket, no permission)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(socket_path))
    except OSError:
        conn.close()
        raise
    return conn


def reply(conn: socket.socket) -> dict[str, Any]:
    """The next frame of the daemon's answer; `ProtocolError` when the connection fails or ends first."""
    try:
        message = receive(conn)
    except OSError as error:
        raise ProtocolError(f"the runai-lite daemon's connection failed: {error.strerror}") from None
    if message is None:
        raise ProtocolError("the runai-lite daemon closed the connection without answering",
                            "its log says why (`runai-adm local status` shows where it is)")
    return message


def call(conn: socket.socket, op: str, **args: Any) -> Any:
    """One plain request on `conn` (then closed): its result, or the error it answers raised here.
    For callers that send and read JSON as it is, without the models (`runai submit`)."""
    with conn:
        send(conn, request(op, **args))
        answer = reply(conn)
    if not answer.get("ok"):
        raise_error(answer)
    return answer.get("result")


def request(op: str, **args: Any) -> dict[str, Any]:
    return {"version": VERSION, "op": op, "args": args}


def result(value: Any) -> dict[str, Any]:
    return {"ok": True, "result": value}


def error(exc: RunaiLiteError) -> dict[str, Any]:
    kind = next((name for name, cls in _ERROR_KINDS.items() if isinstance(exc, cls)), "operational")
    return {"ok": False, "error": {"kind": kind, "message": exc.message, "hint": exc.hint}}


def raise_error(message: dict[str, Any]) -> None:
    """Raise the error a frame carries, as the error class it was on the server."""
    detail = message.get("error") or {}
    cls = _ERROR_KINDS.get(detail.get("kind"), OperationalError)
    raise cls(str(detail.get("message", "the system daemon failed")), detail.get("hint"))
