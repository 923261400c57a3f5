"""A resumable download of one URL to one file: what fetching a checkpoint of hundreds of megabytes needs.

Downloads of hundreds of megabytes break in practice: connections drop,
proxies time out, disks fill up. :func:`download` therefore writes to a
``.part`` file beside the destination, resumes it with an HTTP ``Range``
request, retries transient failures with back-off, checks the size (and the
sha256, when known), and moves the file into place (atomically, with
:func:`os.replace`) only once it is complete. A file at the destination is
thus always a whole file, never the half of one that ``torch.load`` would
reject with an obscure error.

Only the standard library (``urllib.request``) talks to the network, so no
extra dependency is needed; tqdm draws the progress bar. The named
checkpoints and the models built from them are :mod:`samwidgets.hub.checkpoints`'s.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from .digest import file_sha256
from .network import check_online

__all__ = ["DownloadError", "download"]

logger = logging.getLogger(__name__)


#: Seconds to wait before the first retry; the wait doubles with each further retry
#: (capped at MAX_BACKOFF_S). A module constant so that tests can set it to zero.
RETRY_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0

#: HTTP statuses worth retrying: the server or a proxy is busy, not the request wrong.
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_USER_AGENT = "samwidgets-checkpoints (python urllib)"


class DownloadError(OSError):
    """A download that failed for good: wrong size, HTTP error, or retries used up."""


class _TransientError(Exception):
    """A failure inside one attempt that a retry (resuming the .part file) may cure."""


#: Network failures that are retried: refused or reset connections, timeouts,
#: bodies cut short, malformed responses (often a dropped connection).
_TRANSIENT = (_TransientError, urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException)


def download(url: str, dest: str | os.PathLike, expected_size: int | None = None, *, sha256: str | None = None,
             retries: int = 3, progress: bool = True, timeout: float = 60.0, chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` and return ``dest`` as a Path.

    Bytes go to ``dest + ".part"``, which a later attempt or call resumes
    with a ``Range`` request (starting over if the server ignores it).
    Connection errors, timeouts and bodies cut short are retried up to
    ``retries`` times after the first attempt, waiting RETRY_BACKOFF_S,
    then twice as long, and so on. The file is renamed to ``dest`` only when
    complete and, if ``expected_size`` is given, exactly that many bytes;
    otherwise the ``.part`` file is deleted and DownloadError raised. When
    the retries run out the ``.part`` file is kept so that the next call
    resumes it.

    With ``sha256`` (hex) the file's hash is computed while it streams in (no
    second read of a 2.5 GB file) and must match before the file is moved into
    place; a mismatch deletes it and raises DownloadError. A verified file gets
    a ``<dest>.sha256`` record (hash, size, modification time).

    With ``$SAMWIDGETS_OFFLINE`` set (:mod:`samwidgets.io.network`) only an existing ``dest`` is
    returned; a download that would be needed raises :class:`~samwidgets.io.network.OfflineError`.

    An existing ``dest`` of the expected size (or any size when none is
    given) is returned without touching the network, but with ``sha256`` only
    once it is known to have that hash: from its record, else by hashing it
    (one read). One of another size or hash is deleted with a warning and
    downloaded again.
    """
    dest = Path(dest)
    if _reuse_existing(dest, expected_size, sha256):
        return dest
    check_online(f"download of {url} to {dest}")  # SAMWIDGETS_OFFLINE: a cached file only, never the network
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = _StreamDigest() if sha256 else None
    with tqdm(total=expected_size, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
              disable=not progress) as bar:
        _fetch_with_retries(url, part, expected_size, retries=retries, timeout=timeout,
                            chunk_size=chunk_size, bar=bar, digest=digest)
    _finish(url, part, dest, expected_size, sha256, digest)
    return dest


def _reuse_existing(dest: Path, expected_size: int | None, sha256: str | None = None) -> bool:
    """True if ``dest`` is already the complete file; deletes (with a warning) one of the wrong size or hash."""
    if not dest.is_file():
        return False
    size = dest.stat().st_size
    if expected_size is not None and size != expected_size:
        warnings.warn(f"{dest} has {size:,} bytes but {expected_size:,} are expected "
                      "(an incomplete or different file): downloading it again", stacklevel=3)
        dest.unlink()
        _record_path(dest).unlink(missing_ok=True)
        return False
    if sha256 is None or _recorded_sha256(dest) == sha256:
        return True
    actual = file_sha256(dest)
    if actual == sha256:
        _write_record(dest, actual)
        return True
    warnings.warn(f"{dest} has the right size but its sha256 is {actual}, not {sha256} (a corrupted or "
                  "different file): it was deleted and is downloaded again", stacklevel=3)
    dest.unlink()
    _record_path(dest).unlink(missing_ok=True)
    return False


# --------------------------------------------------------------------------- hashes


class _StreamDigest:
    """The sha256 of a .part file, fed chunk by chunk as the file is written (across resumed requests)."""

    def __init__(self) -> None:
        self.hasher = hashlib.sha256()
        self.length = 0  # bytes fed so far: the hash is of the file's first ``length`` bytes

    def start_at(self, part: Path, offset: int) -> None:
        """The next chunk is written at byte ``offset`` of ``part``: hash the bytes before it if not yet fed."""
        if offset == self.length:
            return
        self.hasher, self.length = hashlib.sha256(), 0
        if offset:  # a .part left by an earlier run, resumed: its bytes are read once
            with open(part, "rb") as f:
                while self.length < offset and (chunk := f.read(min(1 << 20, offset - self.length))):
                    self.update(chunk)

    def update(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.length += len(chunk)

    def hexdigest(self, part: Path) -> str:
        """The hash of the whole file (read again only if the chunks fed do not cover it)."""
        size = part.stat().st_size
        if self.length != size:
            return file_sha256(part)
        return self.hasher.hexdigest()


def _record_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _write_record(dest: Path, sha256: str) -> None:
    """Remember that ``dest``, as it is now (size, modification time), has been verified to have ``sha256``."""
    stat = dest.stat()
    _record_path(dest).write_text(f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n")


def _recorded_sha256(dest: Path) -> str | None:
    """The hash recorded for ``dest`` if the record still describes the file as it is, else None."""
    try:
        digest, size, mtime_ns = _record_path(dest).read_text().split()
        stat = dest.stat()
    except (OSError, ValueError):
        return None
    return digest if (int(size), int(mtime_ns)) == (stat.st_size, stat.st_mtime_ns) else None


def _fetch_with_retries(url: str, part: Path, expected_size: int | None, *, retries: int, timeout: float,
                        chunk_size: int, bar: tqdm, digest: _StreamDigest | None = None) -> None:
    """Run :func:`_fetch_once` until the .part file is complete, backing off between transient failures."""
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, expected_size, timeout=timeout, chunk_size=chunk_size, bar=bar, digest=digest)
            return
        except _TRANSIENT as e:
            if attempt == retries:
                raise _retries_exhausted(url, part, expected_size, attempt + 1, e) from e
            delay = min(RETRY_BACKOFF_S * 2 ** attempt, MAX_BACKOFF_S)
            logger.warning("download of %s failed (%s); retrying in %.1f s", url, _describe_error(e), delay)
            time.sleep(delay)


def _fetch_once(url: str, part: Path, expected_size: int | None, *, timeout: float, chunk_size: int,
                bar: tqdm, digest: _StreamDigest | None = None) -> None:
    """One request: append the rest of the file to ``part`` (or rewrite it if the server cannot resume).

    Returns when the server has sent everything it announced; raises
    _TransientError for a body cut short and DownloadError for a failure
    that retrying cannot fix.
    """
    have = _partial_size(part, expected_size)
    if expected_size is not None and have == expected_size:
        return  # an earlier run got every byte but stopped before renaming
    try:
        response = urllib.request.urlopen(_make_request(url, have), timeout=timeout)
    except urllib.error.HTTPError as e:
        _handle_http_error(url, part, have, e)
        return  # 416 for a .part that is already whole
    with response:
        have, total = _response_extent(url, part, response, have, expected_size)
        bar.reset(total=total if total is not None else expected_size)
        bar.update(have)
        limit = expected_size if expected_size is not None else total
        if digest is not None:
            digest.start_at(part, have)
        with open(part, "ab" if have else "wb") as f:
            have = _stream(response, f, have, limit, chunk_size, bar, digest)
    if total is not None and have < total:
        raise _TransientError(f"connection closed after {have:,} of {total:,} bytes")
    if total is None and expected_size is not None and have < expected_size:
        raise _TransientError(f"connection closed after {have:,} of {expected_size:,} bytes")


def _partial_size(part: Path, expected_size: int | None) -> int:
    """Bytes already in the .part file; one larger than expected cannot be resumed and is deleted."""
    if not part.is_file():
        return 0
    have = part.stat().st_size
    if expected_size is not None and have > expected_size:
        part.unlink()
        return 0
    return have


def _make_request(url: str, start: int) -> urllib.request.Request:
    """A GET for ``url`` from byte ``start`` on, asking for the bytes as stored (no compression)."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, headers=headers)


def _handle_http_error(url: str, part: Path, have: int, error: urllib.error.HTTPError) -> None:
    """Turn an HTTP error status into a retry, a finished .part (416 when whole) or a DownloadError."""
    with error:
        if error.code == 416 and have:
            total = _content_range_total(error.headers.get("Content-Range", ""))
            if total == have:
                return  # the .part file already holds the whole file
            part.unlink(missing_ok=True)
            raise _TransientError(f"the server cannot resume at byte {have:,}; starting over")
        if error.code in _RETRY_STATUSES:
            raise _TransientError(f"HTTP {error.code} {error.reason}")
        raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}. "
                            "Check the URL (and your network or proxy settings), "
                            "or download the file by hand and pass its path instead.")


def _content_range_total(value: str) -> int | None:
    """The total length in a Content-Range header ("bytes 0-9/100" or "bytes */100"), if stated."""
    total = value.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _content_range_start(value: str) -> int | None:
    """The first byte position in a Content-Range header ("bytes 10-99/100" -> 10), if stated."""
    unit, _, spec = value.strip().partition(" ")
    start = spec.partition("-")[0].strip()
    return int(start) if unit == "bytes" and start.isdigit() else None


def _response_extent(url: str, part: Path, response: http.client.HTTPResponse, have: int,
                     expected_size: int | None) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's announced total size.

    A 206 must continue at ``have``; any other success means the server sent
    the whole file, so the .part file is rewritten from byte 0. An announced
    total different from ``expected_size`` is final: the .part file is
    deleted and DownloadError raised before downloading the rest.
    """
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.strip().isdigit() else None
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        if _content_range_start(content_range) != have:
            part.unlink(missing_ok=True)
            raise _TransientError(f"the server resumed at the wrong place ({content_range!r}); starting over")
        total = _content_range_total(content_range)
        if total is None and length is not None:
            total = have + length
    else:
        if have:
            logger.info("%s does not support resuming; downloading it from the start", url)
        have, total = 0, length
    if expected_size is not None and total is not None and total != expected_size:
        part.unlink(missing_ok=True)
        raise DownloadError(_size_mismatch_message(url, expected_size, announced=total))
    return have, total


def _stream(response: http.client.HTTPResponse, f: BinaryIO, have: int, limit: int | None, chunk_size: int,
            bar: tqdm, digest: _StreamDigest | None = None) -> int:
    """Copy the body into ``f`` (and ``digest``) and return the file's new size; stops early once past ``limit``."""
    while chunk := response.read(chunk_size):
        f.write(chunk)
        if digest is not None:
            digest.update(chunk)
        have += len(chunk)
        bar.update(len(chunk))
        if limit is not None and have > limit:
            break  # the server sends more than it should: _finish rejects the file
    f.flush()
    os.fsync(f.fileno())
    return have


def _finish(url: str, part: Path, dest: Path, expected_size: int | None, sha256: str | None = None,
            digest: _StreamDigest | None = None) -> None:
    """Move the complete .part file to ``dest``, or delete it and raise if its size or hash is wrong."""
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise DownloadError(_size_mismatch_message(url, expected_size, received=size))
    if sha256 is not None:
        actual = (digest or _StreamDigest()).hexdigest(part)
        if actual != sha256:
            part.unlink()
            raise DownloadError(
                f"download of {url} has the expected size but sha256 {actual}, not {sha256}: the file is "
                "corrupted or a different one, and it was deleted. Run again to download it afresh; if it "
                "happens again, the server (or a proxy) holds another file under this name."
            )
    os.replace(part, dest)
    if sha256 is not None:
        _write_record(dest, sha256)


def _size_mismatch_message(url: str, expected: int, *, received: int | None = None,
                           announced: int | None = None) -> str:
    got = (f"received {received:,} bytes" if received is not None
           else f"is {announced:,} bytes long (as the server announced before sending it)")
    return (f"download of {url} {got} but {expected:,} bytes were expected; the partial file was deleted. "
            "The server may hold a different version of the file, or a proxy or captive portal answered "
            "in its place. Check the URL and the expected size (CheckpointSpec.size), or download the file "
            "by hand and pass its path instead.")


def _retries_exhausted(url: str, part: Path, expected_size: int | None, attempts: int,
                       error: BaseException) -> DownloadError:
    received = part.stat().st_size if part.is_file() else 0
    expected = f"{expected_size:,}" if expected_size is not None else "an unknown number of"
    return DownloadError(
        f"download of {url} failed after {attempts} attempt(s): {_describe_error(error)}; "
        f"received {received:,} of {expected} bytes. The partial file {part} was kept: run again "
        "to resume, check your network or proxy settings, or download the file by hand."
    )


def _describe_error(error: BaseException) -> str:
    """A one-line account of a transient failure, for logs and the final error."""
    if isinstance(error, _TransientError):
        return str(error)
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason  # e.g. ConnectionRefusedError wrapped by urlopen
    return f"{type(error).__name__}: {error}"
