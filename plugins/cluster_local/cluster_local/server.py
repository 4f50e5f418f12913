"""The runner's socket server: pokes from submitters, and one-line requests (ping, status, shutdown).

A submitting process keeps its connection open and sends a poke ("wake": new jobs; "sync": jobs changed
by another process) per submission, never waiting for an answer; any other request is answered on its
connection, which is then closed. The runner (``host``) is told of each: ``poked(cmd)``, ``status()``,
``shutdown(conn)`` (it answers when it leaves) and ``clients_dropped()``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import selectors
import socket
from pathlib import Path
from typing import Any, Optional

from .client import private_dir

log = logging.getLogger("cluster_core.local.runner")

MAX_CLIENTS = 256  # client connections kept open at once (each submitting process keeps one)


class Server:
    """Listens on ``path`` (in ``sdir``, or a private directory under /tmp) for the runner ``host``."""

    def __init__(self, sdir: Path, path: Path, sel: selectors.BaseSelector, host: Any):
        self.sdir, self.path, self.sel, self.host = sdir, path, sel, host
        self.sock: Optional[socket.socket] = None
        self.clients: dict[socket.socket, bytearray] = {}

    def listen(self) -> None:
        path = self.path
        if path.parent != self.sdir and not private_dir(path.parent, create=True):
            raise SystemExit(f"{path.parent} is not a private directory of this user; not listening there")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead runner's; we hold the lock, so no live one listens there
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o077)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(512)
        sock.setblocking(False)
        self.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, self._accept)

    def close(self) -> None:
        """Stop listening, and close every client connection: a submitter poking on a connection it
        kept finds it closed and starts a new runner, so a poke is never sent into a closing runner."""
        if self.sock is None:
            return
        self.sel.unregister(self.sock)
        self.sock.close()
        self.sock = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._drop_clients(len(self.clients))

    def _accept(self) -> None:
        while self.sock is not None:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: let go of kept poke connections, take it later
                log.warning("cannot accept a connection (%s); closing %d kept ones", exc, len(self.clients))
                self._drop_clients(len(self.clients))
                return
            conn.setblocking(False)
            if len(self.clients) >= MAX_CLIENTS:
                self._drop_clients(len(self.clients) - MAX_CLIENTS + 1)
            self.clients[conn] = bytearray()
            self.sel.register(conn, selectors.EVENT_READ, functools.partial(self._client, conn))

    def _drop_clients(self, count: int) -> None:
        """Close the oldest client connections: submitters that kept one open reconnect at their next
        poke, and the runner reads the database again for the pokes they may have sent unread (each was
        sent after its job was committed, so nothing is lost)."""
        for conn in list(self.clients)[:count]:
            self.sel.unregister(conn)
            del self.clients[conn]
            conn.close()
        if count:
            self.host.clients_dropped()

    def _client(self, conn: socket.socket) -> None:
        """Read what a client sent: pokes ("wake", "sync") keep coming on the same connection (a
        submitting process keeps it open); any other request is answered and the connection closed."""
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buf = self.clients[conn]
        buf += data
        while True:
            line, newline, rest = bytes(buf).partition(b"\n")
            if not newline and data and len(buf) < 4096:
                return  # the rest of the line is on its way
            del buf[:len(line) + len(newline)]
            text = line.decode(errors="replace").strip()
            cmd = text.split(" ", 1)[0]
            if cmd in ("wake", "sync"):
                self.host.poked(cmd)
                if buf:
                    continue
                if data:
                    return  # the connection stays for the next poke
                text = ""
            self.sel.unregister(conn)
            del self.clients[conn]
            if not text:
                conn.close()
                return
            self._handle(conn, text)
            return

    def _handle(self, conn: socket.socket, line: str) -> None:
        cmd = line.split(" ", 1)[0]
        reply: Optional[str] = "ok"
        if cmd in ("wake", "sync"):
            reply = None
            self.host.poked(cmd)
        elif cmd == "ping":
            pass
        elif cmd == "status":
            reply = json.dumps(self.host.status())
        elif cmd == "shutdown":
            self.host.shutdown(conn)
            return
        else:
            reply = f"error: unknown request {cmd!r}"
        with contextlib.suppress(OSError):
            if reply is not None:
                conn.send(reply.encode() + b"\n")
        conn.close()
