"""Downloading and loading checkpoints, against a real HTTP server on 127.0.0.1.

The server runs in a thread and serves the bytes of the tiny parity
checkpoint; each test switches how it misbehaves (cut bodies short, ignore
Range, stall, send the wrong size) and then inspects the requests it saw.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from samwidgets.hub import checkpoints
from samwidgets.hub.build import CheckpointError
from samwidgets.hub.checkpoints import (
    OFFICIAL_CHECKPOINTS,
    CheckpointSpec,
    DownloadError,
    checkpoint_path,
    default_cache_dir,
    download,
    from_pretrained,
    register_checkpoint,
    registered_checkpoints,
    unregister_checkpoint,
)
from samwidgets.io import download as download_module
from samwidgets.modeling import CONFIGS, SamConfig

# every test here downloads from its own server on 127.0.0.1
pytestmark = pytest.mark.usefixtures("local_downloads")

FIXTURE = Path(__file__).parent / "data" / "sam_parity_tiny.pt"
TINY_NAME = "tiny_for_tests"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny() -> dict:
    return torch.load(FIXTURE, weights_only=False)


@pytest.fixture(scope="module")
def tiny_config(tiny: dict) -> SamConfig:
    return SamConfig.from_reference_config(tiny["config"])


@pytest.fixture(scope="module")
def payload(tiny: dict, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real (tiny) checkpoint file."""
    path = tmp_path_factory.mktemp("payload") / "tiny.pth"
    torch.save(tiny["state_dict"], path)
    return path.read_bytes()


@dataclass
class Served:
    """What the server sends and what it saw; tests set ``modes`` (one per request) or ``default_mode``."""

    data: bytes
    url: str = ""
    modes: list[str] = field(default_factory=list)
    default_mode: str = "normal"
    ranges: list[str | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    bytes_sent: int = 0

    @property
    def requests(self) -> int:
        return len(self.ranges)


class _Handler(BaseHTTPRequestHandler):
    """Serves Served.data with the behaviour named by the next mode.

    normal: honours ``Range: bytes=N-`` (206 + Content-Range); ignore_range:
    always 200 with the whole file; truncate: announces the full length but
    closes after half of it; no_length: no Content-Length, body ends at
    close; stall: sleeps before the body; 404 and 503: errors.
    """

    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # (http.server names its handlers so)
        served = self.server.served
        requested = self.headers.get("Range")
        served.ranges.append(requested)
        mode = served.modes.pop(0) if served.modes else served.default_mode
        if mode in ("404", "503"):
            return self._send_error(int(mode))
        start = 0
        if requested and mode != "ignore_range":
            start = int(requested.removeprefix("bytes=").rstrip("-"))
            if start >= len(served.data):
                self._status(416, {"Content-Range": f"bytes */{len(served.data)}", "Content-Length": "0"})
                return
        body = served.data[start:]
        headers = {"Content-Type": "application/octet-stream"}
        if mode == "no_length":
            headers["Connection"] = "close"
        else:
            headers["Content-Length"] = str(len(body))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(served.data) - 1}/{len(served.data)}"
        self._status(206 if start else 200, headers)
        if mode == "stall":
            time.sleep(1.0)
        if mode == "truncate":
            body = body[: len(body) // 2]
        if mode in ("truncate", "no_length"):
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()
        served.bytes_sent += len(body)

    def _status(self, code: int, headers: dict[str, str]) -> None:
        self.server.served.statuses.append(code)
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send_error(self, code: int) -> None:
        self._status(code, {"Content-Length": "0"})

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    served: Served

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out leaves a broken pipe behind: expected here


@pytest.fixture
def server(payload: bytes) -> Iterator[Served]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.served = Served(payload, url=f"http://127.0.0.1:{httpd.server_address[1]}/tiny_ckpt.pth")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """No back-off waits between retries (the proxies are cleared by ``local_downloads``, see pytestmark)."""
    monkeypatch.setattr(download_module, "RETRY_BACKOFF_S", 0.0)


@pytest.fixture
def tiny_spec(server: Served, tiny_config: SamConfig) -> Iterator[CheckpointSpec]:
    spec = register_checkpoint(CheckpointSpec(TINY_NAME, server.url, len(server.data), tiny_config))
    try:
        yield spec
    finally:
        unregister_checkpoint(TINY_NAME)


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# --------------------------------------------------------------------------- download


@pytest.mark.parametrize("progress", [False, True])
def test_download_whole_file(server: Served, tmp_path: Path, progress: bool) -> None:
    dest = tmp_path / "sub" / "ckpt.pth"
    assert download(server.url, dest, len(server.data), progress=progress, chunk_size=64 << 10) == dest
    assert dest.read_bytes() == server.data
    assert not part_of(dest).exists()
    assert server.ranges == [None]


def test_download_without_expected_size(server: Served, tmp_path: Path) -> None:
    dest = download(server.url, tmp_path / "ckpt.pth", progress=False)
    assert dest.read_bytes() == server.data


def test_resumes_existing_part_with_range(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    part_of(dest).write_bytes(server.data[:1000])
    download(server.url, dest, len(server.data), progress=False)
    assert dest.read_bytes() == server.data
    assert server.ranges == ["bytes=1000-"]
    assert server.statuses == [206]
    assert server.bytes_sent == len(server.data) - 1000


def test_truncated_body_is_retried_and_resumed(server: Served, tmp_path: Path) -> None:
    server.modes = ["truncate"]
    dest = download(server.url, tmp_path / "ckpt.pth", len(server.data), progress=False)
    assert dest.read_bytes() == server.data
    half = len(server.data) // 2
    assert server.ranges == [None, f"bytes={half}-"]
    assert server.bytes_sent == len(server.data)  # nothing sent twice


def test_truncated_body_without_expected_size_is_retried(server: Served, tmp_path: Path) -> None:
    server.modes = ["truncate"]  # detected from Content-Length alone
    dest = download(server.url, tmp_path / "ckpt.pth", progress=False)
    assert dest.read_bytes() == server.data
    assert server.requests == 2


def test_always_truncated_raises_and_leaves_no_file(server: Served, tmp_path: Path) -> None:
    server.default_mode = "truncate"
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError) as info:
        download(server.url, dest, len(server.data), retries=2, progress=False)
    assert server.requests == 3
    assert not dest.exists()
    message = str(info.value)
    assert server.url in message and f"{len(server.data):,}" in message and "resume" in message
    # the partial file is kept so that the next call continues where this one stopped
    kept = part_of(dest).stat().st_size
    assert 0 < kept < len(server.data)
    server.default_mode = "normal"
    download(server.url, dest, len(server.data), progress=False)
    assert dest.read_bytes() == server.data
    assert server.ranges[-1] == f"bytes={kept}-"


@pytest.mark.parametrize("mode", ["normal", "no_length"])
@pytest.mark.parametrize("delta", [100, -100])
def test_wrong_size_raises_and_removes_part(server: Served, tmp_path: Path, mode: str, delta: int) -> None:
    server.default_mode = mode
    expected = len(server.data) + delta
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError) as info:
        download(server.url, dest, expected, progress=False)
    assert not dest.exists()
    assert not part_of(dest).exists()
    message = str(info.value)
    assert server.url in message
    assert f"{len(server.data):,}" in message and f"{expected:,}" in message
    assert "download the file by hand" in message


def test_existing_complete_dest_is_reused_without_request(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    dest.write_bytes(server.data)
    assert download(server.url, dest, len(server.data), progress=False) == dest
    assert download(server.url, dest, progress=False) == dest
    assert server.requests == 0


def test_existing_dest_of_wrong_size_is_replaced(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    dest.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="downloading it again"):
        download(server.url, dest, len(server.data), progress=False)
    assert dest.read_bytes() == server.data


def test_server_ignoring_range_restarts_from_zero(server: Served, tmp_path: Path) -> None:
    server.default_mode = "ignore_range"
    dest = tmp_path / "ckpt.pth"
    part_of(dest).write_bytes(b"x" * 1000)  # garbage that must not survive
    download(server.url, dest, len(server.data), progress=False)
    assert dest.read_bytes() == server.data
    assert server.ranges == ["bytes=1000-"] and server.statuses == [200]


def test_complete_part_is_renamed_without_request(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    part_of(dest).write_bytes(server.data)
    download(server.url, dest, len(server.data), progress=False)
    assert dest.read_bytes() == server.data and server.requests == 0


def test_complete_part_of_unknown_size_is_finished_after_416(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    part_of(dest).write_bytes(server.data)
    download(server.url, dest, progress=False)
    assert dest.read_bytes() == server.data
    assert server.statuses == [416]


def test_timeout_is_retried(server: Served, tmp_path: Path) -> None:
    server.modes = ["stall"]
    dest = download(server.url, tmp_path / "ckpt.pth", len(server.data), progress=False, timeout=0.3)
    assert dest.read_bytes() == server.data
    assert server.requests == 2


def test_server_error_is_retried(server: Served, tmp_path: Path) -> None:
    server.modes = ["503", "503"]
    dest = download(server.url, tmp_path / "ckpt.pth", len(server.data), progress=False)
    assert dest.read_bytes() == server.data
    assert server.requests == 3


def test_not_found_is_not_retried(server: Served, tmp_path: Path) -> None:
    server.default_mode = "404"
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError, match="404") as info:
        download(server.url, dest, len(server.data), progress=False)
    assert server.url in str(info.value)
    assert server.requests == 1
    assert not dest.exists() and not part_of(dest).exists()


def test_connection_refused_raises_after_retries(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.pth"
    dest = tmp_path / "x.pth"
    with pytest.raises(DownloadError, match="ConnectionRefusedError") as info:
        download(url, dest, 123, retries=1, progress=False)
    assert isinstance(info.value, OSError)
    assert url in str(info.value) and "2 attempt" in str(info.value)
    assert not dest.exists()


def test_backoff_doubles(server: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(download_module, "RETRY_BACKOFF_S", 0.5)
    monkeypatch.setattr(download_module.time, "sleep", waits.append)
    server.default_mode = "503"
    with pytest.raises(DownloadError):
        download(server.url, tmp_path / "ckpt.pth", retries=3, progress=False)
    assert waits == [0.5, 1.0, 2.0]


# --------------------------------------------------------------------------- registry and cache


def test_official_registry() -> None:
    sizes = {name: spec.size for name, spec in OFFICIAL_CHECKPOINTS.items()}
    assert sizes == {"vit_b": 375_042_383, "vit_l": 1_249_524_607, "vit_h": 2_564_550_879}
    for name, spec in OFFICIAL_CHECKPOINTS.items():
        assert spec.config == CONFIGS[name]
        assert spec.url == f"https://dl.fbaipublicfiles.com/segment_anything/{spec.filename}"
        assert registered_checkpoints()[name] == spec
    assert OFFICIAL_CHECKPOINTS["vit_h"].filename == "sam_vit_h_4b8939.pth"


def test_register_refuses_silent_replacement(tiny_config: SamConfig) -> None:
    spec = CheckpointSpec("vit_b", "http://example.invalid/other.pth", 10, tiny_config)
    with pytest.raises(ValueError, match="overwrite=True"):
        register_checkpoint(spec)
    register_checkpoint(OFFICIAL_CHECKPOINTS["vit_b"])  # the same spec again: fine
    try:
        register_checkpoint(spec, overwrite=True)
        assert registered_checkpoints()["vit_b"] == spec
    finally:
        unregister_checkpoint("vit_b")
    assert registered_checkpoints()["vit_b"] == OFFICIAL_CHECKPOINTS["vit_b"]


@pytest.mark.parametrize("filename", ["../evil.pth", "a/b.pth", ".."])
def test_spec_filename_must_be_plain(tiny_config: SamConfig, filename: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        CheckpointSpec("x", "http://example.invalid/x.pth", 10, tiny_config, filename=filename)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    assert checkpoint_path("vit_b") == tmp_path / "checkpoints" / "sam_vit_b_01ec64.pth"
    monkeypatch.delenv("SAMWIDGETS_CACHE_DIR")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("samwidgets"))


# --------------------------------------------------------------------------- from_pretrained


def assert_weights_equal(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(state_dict)
    for key, value in state_dict.items():
        assert torch.equal(loaded[key], value.float() if value.is_floating_point() else value), key


def test_from_pretrained_downloads_into_cache(server: Served, tiny_spec: CheckpointSpec, tiny: dict,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    model = from_pretrained(TINY_NAME, device="cpu", progress=False)
    assert not model.training
    assert next(model.parameters()).device == torch.device("cpu")
    assert_weights_equal(model, tiny["state_dict"])
    assert (tmp_path / "checkpoints" / "tiny_ckpt.pth").read_bytes() == server.data
    from_pretrained(TINY_NAME, device="cpu", progress=False)  # cached: no second request
    assert server.requests == 1


def test_from_pretrained_cache_dir_argument(server: Served, tiny_spec: CheckpointSpec, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path / "env"))
    from_pretrained(TINY_NAME, cache_dir=tmp_path / "arg", progress=False)
    assert (tmp_path / "arg" / "checkpoints" / "tiny_ckpt.pth").is_file()
    assert not (tmp_path / "env").exists()


def test_from_pretrained_unknown_name_lists_known() -> None:
    with pytest.raises(CheckpointError, match="unknown checkpoint name 'vit_x'") as info:
        from_pretrained("vit_x")
    for name in ("vit_b", "vit_l", "vit_h"):
        assert name in str(info.value)


def test_from_pretrained_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="vit_b"):
        from_pretrained(tmp_path / "nope.pth")


def test_from_pretrained_path_of_unknown_config(tiny: dict, tmp_path: Path) -> None:
    path = tmp_path / "custom.pth"
    torch.save(tiny["state_dict"], path)
    with pytest.raises(CheckpointError) as info:
        from_pretrained(path)
    message = str(info.value)
    assert "could not tell which SAM model" in message and str(path) in message
    assert "width 64, 2 blocks" in message
    assert "vit_b, vit_h, vit_l" in message and "build_sam(SamConfig" in message


def test_from_pretrained_path_uses_guessed_config(tiny: dict, tiny_config: SamConfig, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Official files are hundreds of MB, so pretend the tiny shapes are an official model.
    monkeypatch.setitem(CONFIGS, "vit_tiny", tiny_config)
    monkeypatch.setattr(checkpoints, "guess_model_type", lambda sd: "vit_tiny")
    path = tmp_path / "tiny.pth"
    torch.save(tiny["state_dict"], path)
    model = from_pretrained(str(path), device="cpu")
    assert model.config == tiny_config
    assert_weights_equal(model, tiny["state_dict"])


def test_from_pretrained_truncated_file(payload: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        from_pretrained(path)


def test_from_pretrained_truncated_cache_of_unsized_spec(server: Served, tiny_config: SamConfig,
                                                        payload: bytes, tmp_path: Path) -> None:
    # Without a size in the spec the cache cannot be checked, so loading reports the damage.
    spec = register_checkpoint(CheckpointSpec(TINY_NAME, server.url, None, tiny_config))
    try:
        path = checkpoint_path(spec.name, tmp_path)
        path.parent.mkdir(parents=True)
        path.write_bytes(payload[:1000])
        with pytest.raises(CheckpointError, match="truncated"):
            from_pretrained(spec.name, cache_dir=tmp_path, progress=False)
        assert server.requests == 0
    finally:
        unregister_checkpoint(TINY_NAME)


def test_from_pretrained_replaces_damaged_cache(server: Served, tiny_spec: CheckpointSpec, tiny: dict,
                                                payload: bytes, tmp_path: Path) -> None:
    path = checkpoint_path(TINY_NAME, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(payload[:1000])
    with pytest.warns(UserWarning, match="downloading it again"):
        model = from_pretrained(TINY_NAME, cache_dir=tmp_path, device="cpu", progress=False)
    assert_weights_equal(model, tiny["state_dict"])


# --------------------------------------------------------------------------- sha256


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def record_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


class _CountedFile:
    """A file opened for reading whose every byte read is added to ``ReadCounter.bytes_read[path]``."""

    def __init__(self, f, counter: ReadCounter, key: str) -> None:
        self._f, self._counter, self._key = f, counter, key

    def _count(self, n: int) -> None:
        self._counter.bytes_read[self._key] = self._counter.bytes_read.get(self._key, 0) + n

    def read(self, *args):
        data = self._f.read(*args)
        self._count(len(data))
        return data

    def readinto(self, buffer):
        n = self._f.readinto(buffer)
        self._count(n or 0)
        return n

    def readline(self, *args):
        line = self._f.readline(*args)
        self._count(len(line))
        return line

    def __iter__(self):
        for line in self._f:
            self._count(len(line))
            yield line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)


@dataclass
class ReadCounter:
    """Every open of a file under ``folder`` for reading, and the bytes read from it, by file name.

    ``open`` is replaced where every reader in Python goes through it: ``builtins.open`` (plain ``open()`` in any
    module) and ``io.open`` (``Path.read_bytes``, ``Path.open``).
    """

    folder: Path
    opens: dict[str, int] = field(default_factory=dict)
    bytes_read: dict[str, int] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import builtins
        import io

        real_open = io.open

        def counting_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if isinstance(file, (str, Path)) and Path(file).resolve().parent == self.folder.resolve() \
                    and "r" in mode and "+" not in mode:
                key = Path(file).name
                self.opens[key] = self.opens.get(key, 0) + 1
                return _CountedFile(f, self, key)
            return f

        monkeypatch.setattr(builtins, "open", counting_open)
        monkeypatch.setattr(io, "open", counting_open)


@pytest.fixture()
def reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReadCounter:
    counter = ReadCounter(tmp_path)
    counter.install(monkeypatch)
    return counter


def test_the_read_counter_sees_every_kind_of_read(tmp_path: Path, reads: ReadCounter) -> None:
    (tmp_path / "f.bin").write_bytes(b"x" * 100)
    assert reads.opens == {}  # writing is not reading
    with open(tmp_path / "f.bin", "rb") as f:
        f.read(10)
    (tmp_path / "f.bin").read_bytes()
    checkpoints.file_sha256(tmp_path / "f.bin")
    assert reads.opens == {"f.bin": 3} and reads.bytes_read == {"f.bin": 10 + 100 + 100}


@pytest.mark.parametrize("modes", [[], ["truncate"], ["ignore_range"]], ids=["whole", "resumed", "restarted"])
def test_sha256_is_computed_while_streaming_and_recorded(server: Served, tmp_path: Path, modes: list[str],
                                                         reads: ReadCounter) -> None:
    """The hash is fed chunk by chunk, also across a resumed request: neither the file nor the .part is read back."""
    dest = tmp_path / "ckpt.pth"
    earlier = 0
    if modes == ["ignore_range"]:  # a .part from an earlier run that the server will not resume
        earlier = 1000
        part_of(dest).write_bytes(server.data[:earlier])
    server.modes = list(modes)
    download(server.url, dest, len(server.data), sha256=sha(server.data), progress=False, chunk_size=4096)
    counted = dict(reads.bytes_read)
    assert dest.read_bytes() == server.data and not part_of(dest).exists()
    assert counted.get(dest.name, 0) == 0, f"the downloaded file was read back: {counted}"
    # at most the earlier run's bytes are read from the .part, once (before the server says it will not resume)
    assert counted.get(part_of(dest).name, 0) <= earlier, f"the .part was read back: {counted}"
    assert record_of(dest).read_text().split()[0] == sha(server.data)


def test_resuming_a_part_of_an_earlier_run_hashes_its_bytes_once(server: Served, tmp_path: Path,
                                                                  reads: ReadCounter) -> None:
    dest = tmp_path / "ckpt.pth"
    part_of(dest).write_bytes(server.data[:1000])
    download(server.url, dest, len(server.data), sha256=sha(server.data), progress=False)
    counted = dict(reads.bytes_read)
    assert dest.read_bytes() == server.data and server.ranges == ["bytes=1000-"]
    assert counted == {part_of(dest).name: 1000}, counted  # the earlier bytes once, nothing else


def test_right_size_wrong_content_is_deleted_and_said(server: Served, tmp_path: Path) -> None:
    """A corrupted file of exactly the right size: deleted, with a message that names the hashes and the fix."""
    expected = sha(server.data)
    server.data = bytes(b ^ 0xFF for b in server.data)  # same length, other bytes
    dest = tmp_path / "ckpt.pth"
    with pytest.raises(DownloadError, match=rf"sha256 {sha(server.data)}, not {expected}.*deleted.*Run again"):
        download(server.url, dest, len(server.data), sha256=expected, progress=False)
    assert not dest.exists() and not part_of(dest).exists() and not record_of(dest).exists()


def test_cached_file_is_trusted_by_its_record_and_replaced_when_it_changed(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    download(server.url, dest, len(server.data), sha256=sha(server.data), progress=False)
    assert server.requests == 1
    download(server.url, dest, len(server.data), sha256=sha(server.data), progress=False)
    assert server.requests == 1  # the record vouches for the file as it is: no request, no hashing
    dest.write_bytes(bytes(len(server.data)))  # damaged in place: same size, new contents and mtime
    with pytest.warns(UserWarning, match="sha256 .* was deleted and is downloaded again"):
        download(server.url, dest, len(server.data), sha256=sha(server.data), progress=False)
    assert dest.read_bytes() == server.data and server.requests == 2


def test_cached_file_without_record_is_hashed_once(server: Served, tmp_path: Path) -> None:
    dest = tmp_path / "ckpt.pth"
    dest.write_bytes(server.data)  # copied in by hand: no record
    download(server.url, dest, len(server.data), sha256=sha(server.data), progress=False)
    assert server.requests == 0 and record_of(dest).exists()


def test_from_pretrained_checks_the_registered_hash(server: Served, tiny_config: SamConfig, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    wrong = register_checkpoint(CheckpointSpec(TINY_NAME, server.url, len(server.data), tiny_config,
                                               sha256="0" * 64), overwrite=True)
    try:
        with pytest.raises(DownloadError, match="sha256"):
            from_pretrained(TINY_NAME, progress=False)
        assert not checkpoint_path(TINY_NAME).exists()
        register_checkpoint(CheckpointSpec(TINY_NAME, server.url, len(server.data), tiny_config,
                                           sha256=sha(server.data)), overwrite=True)
        assert from_pretrained(TINY_NAME, progress=False).config == tiny_config
    finally:
        unregister_checkpoint(wrong.name)


def test_a_checkpoint_without_a_published_hash_says_its_content_is_not_verified(
        server: Served, tiny_spec: CheckpointSpec, tmp_path: Path) -> None:
    assert tiny_spec.sha256 is None
    with pytest.warns(UserWarning, match=r"size is checked \(\d[\d,]* bytes\), its content is not verified"):
        checkpoints.download_checkpoint(TINY_NAME, cache_dir=tmp_path, progress=False)
    assert checkpoint_path(TINY_NAME, tmp_path).read_bytes() == server.data


def test_official_hashes_are_the_pinned_ones() -> None:
    assert {name: spec.sha256[:12] for name, spec in OFFICIAL_CHECKPOINTS.items()} == {
        "vit_b": "ec2df6273261", "vit_l": "3adcc4315b64", "vit_h": "a7bf3b02f3eb"}
    with pytest.raises(ValueError, match="sha256"):
        CheckpointSpec("x", "http://example.invalid/x.pth", 10, CONFIGS["vit_b"], sha256="EC2DF6")


def test_bundled_weights_are_checked_at_load(tmp_path: Path) -> None:
    from samwidgets.hub.build import check_bundled_weights
    from samwidgets.hub.registry import BUNDLED_SHA256, BUNDLED_WEIGHTS

    check_bundled_weights()  # the shipped file is the one the registry names
    assert sha(BUNDLED_WEIGHTS.read_bytes()) == BUNDLED_SHA256
    damaged = tmp_path / "default_cnn.pt"
    data = BUNDLED_WEIGHTS.read_bytes()
    damaged.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # one byte changed
    with pytest.raises(CheckpointError, match=r"damaged or replaced.*Reinstall samwidgets"):
        check_bundled_weights(damaged)
