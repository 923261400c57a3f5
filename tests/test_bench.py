"""The benchmark runs end to end and writes its table (tiny settings; no timing is asserted)."""

from __future__ import annotations

import pytest

from samwidgets.bench.speed import HEADER
from samwidgets.cli import bench
from samwidgets.errors import UserInputError


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
    with pytest.raises(UserInputError):
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
    with pytest.raises(UserInputError):
        bench.main(["--configs", str(tmp_path / "missing.json")])


@pytest.mark.slow
def test_train_step_bench_times_the_parts_and_counts_flops(tmp_path):
    """--train-step: every part of a real training step is timed (by hooks) and its FLOPs are counted."""
    import json

    from small_configs import CNN_SMALL

    from samwidgets.bench.train_step import PARTS, StepShape, count_step_flops, make_source, time_steps

    config = tmp_path / "cnn.json"
    config.write_text(json.dumps(CNN_SMALL.to_dict()))
    out = tmp_path / "step.md"
    assert bench.main(["--train-step", "--configs", str(config), "--shapes", "2x2x2", "1x4x3", "--steps", "2",
                       "--out", str(out)]) == 0
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 2 x 2 x 2 |") or line.startswith("| 1 x 4 x 3")]
    assert len(rows) == 2 and "1.00x" in rows[0] and "matrix peak fp32" in text

    shape = StepShape(2, 2, 2)
    source = make_source(CNN_SMALL, None)
    (timing,) = time_steps(CNN_SMALL, [shape], source, steps=2)
    assert all(len(timing.seconds[p]) == 2 and min(timing.seconds[p]) >= 0 for p in PARTS)
    assert timing.median("encoder backward") > 0 and timing.median("rounds") > 0
    # more rounds and more masks cost more FLOPs; the encoder's share does not change with rounds
    assert count_step_flops(CNN_SMALL, StepShape(2, 2, 4), source) > count_step_flops(CNN_SMALL, shape, source) > 0


def test_train_step_shapes_are_checked():
    from samwidgets.cli.bench import parse_shape

    assert parse_shape("8x4x4") == parse_shape("8x4x4bf16").__class__(8, 4, 4)
    assert parse_shape("8x4x4bf16").bf16
    for bad in ("8x4", "8x0x4", "axbxc"):
        with pytest.raises(ValueError, match="step shape"):
            parse_shape(bad)
