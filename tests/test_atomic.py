"""Atomic writes: the final file appears whole, with the mode a plain write would give it."""

from __future__ import annotations

import os
import stat

import pytest

from samwidgets.io.atomic import atomic_write, atomic_write_bytes


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="file modes are POSIX")
def test_new_files_get_the_umask_mode_and_existing_files_keep_theirs(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "a.json", b"{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not the temporary file's 0o600
        path.chmod(0o640)
        atomic_write_bytes(path, b"[]")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"[]"
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_bytes(tmp_path / "b.bin", b"old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.bin"]
