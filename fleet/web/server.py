"""Serving the fleet web with waitress, in the foreground (``hymy fleet serve``) or on a thread beside
the ingest (``hymy fleet run``, ``hymy demo``).

Waitress is pure Python with a thread pool: no C extension to build on a Raspberry Pi, no fork, so
one process keeps one store connection (SQLite's writer lock is then never fought over by workers).
"""

from __future__ import annotations

import gc
import threading
import warnings
from typing import Any

from flask import Flask
from waitress.server import create_server

#: Threads serving requests; pages are short reads of the rollups, so a few suffice for a county.
THREADS = 8


class WebServer:
    """A waitress server for ``app`` on ``host:port`` (port 0: any free one), stoppable from any thread."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        """Listen on ``host:port`` now; OSError when the port is taken (nothing left open behind)."""
        failure: OSError | None = None
        with warnings.catch_warnings():
            # A failed bind leaves the socket waitress opened to the garbage collector, which warns
            # (an error under -W error); it is closed here, quietly, before the error is raised.
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                self._server: Any = create_server(
                    app, host=host, port=port, threads=THREADS, ident="hymy", asyncore_use_poll=True
                )
            except OSError as exc:
                failure = OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}")
            if failure is not None:
                gc.collect()
        if failure is not None:
            raise failure
        self.host = host
        self.port: int = self._server.effective_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address people open."""
        return f"http://{self.host}:{self.port}/"

    def run(self) -> None:
        """Serve until ``stop()``."""
        self._server.run()

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self.run, name="hymy-web", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, finish the requests in hand and let ``run()`` return."""
        self._server.task_dispatcher.shutdown(timeout=timeout)  # first: a task in hand still pulls the trigger
        self._server.close()
        if self._thread is not None:
            self._thread.join(timeout)
