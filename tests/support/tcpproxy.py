"""A small threaded TCP forwarder: a broker outage the test controls, without touching the real broker."""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; pause() drops every connection and refuses new ones."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5672):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.paused = threading.Event()
        self.connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="tcpproxy-accept", daemon=True)

    def start(self) -> "TcpProxy":
        self._thread.start()
        return self

    def url(self, amqp_url: str) -> str:
        """The same AMQP URL with its host and port replaced by this proxy's."""
        scheme, rest = amqp_url.split("://", 1)
        userinfo, _, hostpath = rest.rpartition("@")
        _, _, path = hostpath.partition("/")
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{path}"

    def pause(self) -> None:
        """The broker is away: open connections are cut, new ones are closed as soon as they arrive."""
        self.paused.set()
        with self._lock:
            connections, self.connections = list(self.connections), set()
        for conn in connections:
            _close(conn)

    def resume(self) -> None:
        self.paused.clear()

    def stop(self) -> None:
        self._closed = True
        self.pause()
        _close(self.listener)

    def _accept_loop(self):
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.paused.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self.connections.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True, name="tcpproxy-pipe").start()

    def _pipe(self, src: socket.socket, dst: socket.socket):
        try:
            while True:
                data = src.recv(65536)
                if not data or self.paused.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self.connections.discard(src)
                self.connections.discard(dst)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
