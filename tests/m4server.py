"""A real HTTP server on 127.0.0.1 standing in for the M4 organisers' repository, and small M4 files.

:class:`M4Server` serves the files of a folder at ``/{part}/{name}`` (the part is ignored), counts
the requests, and can cut a file short: it announces the whole ``Content-Length``, sends half and
closes the connection, as a dropped download does. ``server.url`` is the ``TSFORECAST_M4_URL``
template that points :func:`tsforecast.datasets.load_m4` at it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np


class M4Server:
    """Serves ``root``'s files; ``requests`` lists the paths asked for, ``truncated`` the names cut short."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[str] = []
        self.truncated: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,  # quick shutdown
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{{part}}/{{name}}"

    def __enter__(self) -> M4Server:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(server: M4Server):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            server.requests.append(self.path)
            path = server.root / self.path.rsplit("/", 1)[-1]
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if path.name in server.truncated:
                body = body[: len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args):  # quiet test output
            pass

    return Handler


def write_m4_files(folder: Path, prefix: str = "Yearly", horizon: int = 6, n_series: int = 3) -> Path:
    """``{prefix}-train.csv`` and ``-test.csv`` in the M4 layout: quoted cells, ragged rows (30 to 30 +
    2 * (n_series - 1) values), ``horizon`` test values per series; trending, positive, seeded."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lengths = [30 + 2 * k for k in range(n_series)]
    series = [100 + 10 * k + np.cumsum(rng.uniform(0.5, 1.5, n + horizon)) for k, n in enumerate(lengths)]

    def table(rows: list, width: int) -> str:
        header = ",".join(f'"V{i}"' for i in range(1, width + 2))
        lines = [
            ",".join([f'"{sid}"', *(f'"{v:.2f}"' for v in values)] + ['""'] * (width - len(values)))
            for sid, values in rows
        ]
        return "\n".join([header, *lines]) + "\n"

    ids = [f"{prefix[0]}{k + 1}" for k in range(n_series)]
    train = [(sid, values[: len(values) - horizon]) for sid, values in zip(ids, series, strict=True)]
    test = [(sid, values[-horizon:]) for sid, values in zip(ids, series, strict=True)]
    (folder / f"{prefix}-train.csv").write_text(table(train, max(lengths)))
    (folder / f"{prefix}-test.csv").write_text(table(test, horizon))
    return folder
