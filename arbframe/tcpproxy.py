"""A TCP proxy in front of a server (PostgreSQL, Redis, a venue), to cut a connection for real.

The `state_outage` fault routes a network state store through one (see
``route_through_proxy`` of the `redis` and `postgres` stores); tests use it the same way.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of a server, to cut the connection for real.

    Clients connect to ``proxy.port``; ``cut()`` closes every proxied connection (both ends
    see it closed) and stops listening, so new connections are refused as if the server were
    down; ``restore()`` listens again on the same port; ``close()`` cuts for good. Threads, no
    asyncio: usable from any test or drill::

        with TcpProxy("127.0.0.1", 5432) as proxy:
            url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
            ...
            proxy.cut()      # the next query fails
            proxy.restore()  # and the one after works again
    """

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        """The port clients connect to (fixed for the proxy's life)."""
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.closed = False
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: cut() or close()
                return
            try:
                server = socket.create_connection(self.target, timeout=2)
                server.settimeout(None)
            except OSError:
                client.close()  # the server itself is down: so is the proxy
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            for sock in (client, server):  # forward each write at once: no Nagle delay
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._drop(source, sink)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump blocked in recv()
            sock.close()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def cut(self) -> None:
        """Close every connection and refuse new ones until ``restore()``."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            listener.close()
        self._drop(*sockets)

    def restore(self) -> None:
        """Accept connections again, on the same port (not once closed)."""
        if self._listener is None and not self.closed:
            self._listen()

    def close(self) -> None:
        """Cut for good: a later ``restore()`` (a drill's, after its store closed) does nothing."""
        self.closed = True
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
