"""The service's operations over the system daemon's socket: what `LocalBackend` calls in system
mode, with the same signatures as `LocalService` (and its records as results).

One connection per call. The client says nothing about who it is: the daemon asks the kernel.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import OperationalError
from . import protocol

NOT_RUNNING_HINT = ("ask an administrator to start it (sudo systemctl start runai-lite, or sudo runai-adm local init "
                    "--system); to use a personal daemon instead, set RUNAI_LITE_HOME")


class ServiceClient:
    def __init__(self, socket_path: Path):
        self.socket_path = socket_path

    def __getattr__(self, op: str) -> Any:
        from .service import OPERATIONS

        if op not in OPERATIONS:
            raise AttributeError(op)
        return functools.partial(self._call, op)

    def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        import inspect

        from pydantic import TypeAdapter

        from .service import STREAMING, LocalService, operation_types

        params, result_type = operation_types(op)
        bound = inspect.signature(getattr(LocalService, op)).bind(None, *args, **kwargs)
        encoded = {name: TypeAdapter(params[name]).dump_python(value, mode="json")
                   for name, value in bound.arguments.items() if name != "self"}
        conn = self._connect()
        try:
            protocol.send(conn, protocol.request(op, **encoded))
            first = protocol.reply(conn)
        except BaseException:
            conn.close()
            raise
        if op in STREAMING:
            return self._lines(conn, first)
        conn.close()
        if not first.get("ok"):
            protocol.raise_error(first)
        return TypeAdapter(result_type).validate_python(first.get("result"))

    def _connect(self) -> socket.socket:
        return connect_to_system_daemon(self.socket_path)

    def _lines(self, conn: socket.socket, first: dict[str, Any]) -> Iterator[str]:
        """A stream's lines, the first frame already read (so that a refusal is raised at once)."""
        if "line" not in first and not first.get("ok"):
            conn.close()
            protocol.raise_error(first)

        def lines() -> Iterator[str]:
            message = first
            with conn:
                while "line" in message:
                    yield str(message["line"])
                    message = protocol.reply(conn)
                if not message.get("ok"):
                    protocol.raise_error(message)

        return lines()


def connect_to_system_daemon(socket_path: Path) -> socket.socket:
    try:
        return protocol.connect(socket_path)
    except (FileNotFoundError, ConnectionRefusedError):
        raise OperationalError(f"the machine-wide runai-lite daemon is not running (nothing answers at "
                               f"{socket_path})", NOT_RUNNING_HINT) from None
    except OSError as error:
        raise OperationalError(f"cannot connect to the runai-lite daemon at {socket_path}: "
                               f"{error.strerror}", NOT_RUNNING_HINT) from None
