"""The benchmark runs end to end and writes its table (tiny settings; no timing is asserted)."""

from __future__ import annotations

import pytest

from samwidgets import bench


def test_bench_writes_markdown_table(tmp_path, monkeypatch, tiny_config):
    monkeypatch.setitem(bench.CONFIGS, "tiny", tiny_config)
    out = tmp_path / "bench.md"
    assert bench.main(["--configs", "tiny", "--encoder-runs", "1", "--predict-calls", "3", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| config | params (M) |" in text and "| tiny |" in text
    row = next(line for line in text.splitlines() if line.startswith("| tiny |"))
    assert len(row.strip("|").split("|")) == len(bench.HEADER)


def test_bench_rejects_unknown_config():
    with pytest.raises(SystemExit):
        bench.main(["--configs", "vit_x"])
