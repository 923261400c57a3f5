"""A file served over HTTP on 127.0.0.1, for the tests of downloads by name (MobileSAM's and SAM 2's files).

The tests that use it also ask for the ``local_downloads`` fixture (tests/conftest.py): offline mode off, no
proxy in between.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # no line on stderr per request
        pass


@contextmanager
def serving(path: Path) -> Iterator[str]:
    """Serve ``path``'s folder on a free port of 127.0.0.1 while the block runs; yields the URL of ``path``."""
    handler = functools.partial(_QuietHandler, directory=str(path.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{path.name}"
    finally:
        httpd.shutdown()
        httpd.server_close()
