"""The benchmark runs end to end and writes its table (tiny settings; no timing is asserted)."""

from __future__ import annotations

import pytest

from samwidgets.bench.speed import HEADER
from samwidgets.cli import bench


def test_bench_writes_markdown_table(tmp_path, monkeypatch, tiny_config):
    monkeypatch.setitem(bench.CONFIGS, "tiny", tiny_config)
    out = tmp_path / "bench.md"
    assert bench.main(["--configs", "tiny", "--encoder-runs", "1", "--predict-calls", "3", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| config | params (M) |" in text and "| tiny |" in text
    row = next(line for line in text.splitlines() if line.startswith("| tiny |"))
    assert len(row.strip("|").split("|")) == len(HEADER)


def test_bench_plain_adds_a_row_of_the_plain_modeling_code(tmp_path, monkeypatch, tiny_config):
    monkeypatch.setitem(bench.CONFIGS, "tiny", tiny_config)
    out = tmp_path / "bench.md"
    assert bench.main(["--configs", "tiny", "--plain", "--encoder-runs", "1", "--predict-calls", "3",
                       "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| tiny")]
    assert [r.split("|")[1].strip() for r in rows] == ["tiny", "tiny (plain)"]


def test_bench_rejects_unknown_config():
    with pytest.raises(SystemExit):
        bench.main(["--configs", "vit_x"])


def test_bench_measures_a_config_file(tmp_path):
    """A SamConfig JSON (e.g. recipes/bsds_cnn/cnn_512.json) is measured like a named config."""
    import json

    from small_configs import CNN_SMALL

    config = tmp_path / "cnn.json"
    config.write_text(json.dumps(CNN_SMALL.to_dict()))
    out = tmp_path / "bench.md"
    assert bench.main(["--configs", str(config), "--encoder-runs", "1", "--predict-calls", "3", "--out", str(out)]) == 0
    assert f"| {config} |" in out.read_text()
    with pytest.raises(SystemExit):
        bench.main(["--configs", str(tmp_path / "missing.json")])
