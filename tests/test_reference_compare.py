"""``python -m samwidgets bench --compare-reference`` without the reference installed.

The real comparison needs ``segment_anything`` (see the README's Benchmark
section); here the missing-package path, the table and ratio formatting, and
the measurement wiring (two tiny samwidgets models standing in for both
sides) are checked. No timing is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from small_configs import SMALL

from samwidgets.bench import reference as rc
from samwidgets.cli import bench


def test_missing_reference_exits_2_with_the_fix(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "segment_anything", None)  # makes `import segment_anything` fail
    assert not rc.reference_available()
    out = tmp_path / "cmp.md"
    assert bench.main(["--compare-reference", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "segment_anything" in err and "not importable" in err
    assert "pip install torch==2.14.1 torchvision==0.29.1" in err and "pip install segment-anything" in err
    assert not out.exists()


def test_missing_mobile_sam_names_its_package(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mobile_sam", None)
    assert not rc.reference_available("vit_t")
    assert bench.main(["--compare-reference", "--configs", "vit_t"]) == 2
    err = capsys.readouterr().err
    assert "`mobile_sam` (for vit_t) is not importable" in err and "pip install mobilesam-mirror timm" in err


def test_a_config_without_a_reference_package_is_refused(capsys):
    assert bench.main(["--compare-reference", "--configs", "default_cnn"]) == 2
    assert "no reference package defines 'default_cnn'" in capsys.readouterr().err


def test_ratio_and_table_formatting():
    assert rc.ratio(3.0, 1.5) == "2.00x"
    assert rc.ratio(1.0, 4.0) == "0.25x"
    assert rc.ratio(None, 1.0) == "n/a" and rc.ratio(1.0, 0.0) == "n/a"
    settings = rc.Settings(encoder_runs=2, predict_calls=30)
    ref = rc.SideResult(encode_s=12.0, encode_peak_mib=900.0, predict_ms=80.0, generation_s=60.0,
                        generation_masks=3, threads=2, torch_version="x")
    ours = rc.SideResult(encode_s=10.0, encode_peak_mib=None, predict_ms=20.0, generation_s=30.0,
                         generation_masks=4, threads=2, torch_version="x")
    table = rc.comparison_table(ref, ours, settings)
    lines = table.splitlines()
    assert lines[0] == "| measure | reference | samwidgets | reference / samwidgets |"
    assert all(len(line.strip("|").split("|")) == 4 for line in lines)
    assert "| encoder s/image (set_image, median of 2) | 12.00 | 10.00 | 1.20x |" in lines
    assert "| encode peak RSS above RSS before (MiB, first encode included) | 900 | n/a | n/a |" in lines
    assert "| single-point predict ms (median of 30, multimask) | 80.0 | 20.0 | 4.00x |" in lines
    assert "| automatic generation s/image (32x32 grid, encoder included) | 60.00 | 30.00 | 2.00x |" in lines
    assert lines[-1] == "| masks from automatic generation | 3 | 4 | - |"
    assert not any("bf16" in line for line in lines)  # no bf16 measurement, no row
    ours.encode_bf16_s = 4.0
    bf16_row = rc.comparison_table(ref, ours, settings).splitlines()[3]
    assert bf16_row.startswith("| encoder s/image, samwidgets bf16 mode")
    assert bf16_row.endswith("| 12.00 | 4.00 | 3.00x |")


def test_max_abs_diff_checks_shapes():
    assert rc.max_abs_diff(torch.zeros(2, 3), torch.full((2, 3), -0.5)) == 0.5
    with pytest.raises(ValueError, match="shape"):
        rc.max_abs_diff(torch.zeros(2), torch.zeros(3))


def test_compare_wiring_with_two_tiny_samwidgets_models(monkeypatch):
    """Both sides are samwidgets SMALL models fed the same weights file, so the outputs must agree exactly."""
    monkeypatch.setitem(bench.CONFIGS, "small", SMALL)
    settings = rc.Settings(config="small", image_hw=(48, 64), encoder_runs=1, predict_calls=2, generation_runs=1,
                           points_per_side=4, points_per_batch=8, threads=torch.get_num_threads())
    seen = []

    def run_side(name: str, settings: rc.Settings, weights: Path, workdir: Path):
        seen.append(name)
        side = rc.samwidgets_side(settings.config, torch.load(weights, weights_only=True))
        return rc.measure_side(side, settings)

    text = rc.compare(settings, "test machine", run_side=run_side)
    assert seen == ["reference", "samwidgets"]
    assert text.startswith("Machine: test machine")
    assert "| encoder s/image (set_image, median of 1) |" in text and "4x4 grid" in text
    for name in ("image embedding", "low-res logits", "mask logits at image size", "IoU predictions"):
        line = next(line for line in text.splitlines() if name in line)
        assert line.endswith("): 0"), line


def test_measure_side_outputs_have_reference_shapes(monkeypatch):
    monkeypatch.setitem(bench.CONFIGS, "small", SMALL)
    settings = rc.Settings(config="small", image_hw=(48, 64), encoder_runs=1, predict_calls=1, generation_runs=1,
                           points_per_side=2, points_per_batch=4)
    side = rc.samwidgets_side("small", rc.random_state_dict("small", 0))
    result, outputs = rc.measure_side(side, settings)
    s = SMALL.low_res_mask_size
    assert outputs["low_res"].shape == (3, s, s)
    assert outputs["mask_logits"].shape == (3, 48, 64)
    assert outputs["iou"].shape == (3,)
    assert outputs["embedding"].shape[:2] == (1, SMALL.prompt_embed_dim)
    assert result.encode_s > 0 and result.predict_ms > 0 and result.generation_s > 0
    assert result.encode_bf16_s is not None and result.encode_bf16_s > 0  # the labelled bf16 mode, timed too
    assert result.threads == torch.get_num_threads()


def test_generation_runs_zero_skips_the_generation_and_its_rows(monkeypatch):
    """--generation-runs 0: the encoder and predict rows only, no median of nothing."""
    monkeypatch.setitem(bench.CONFIGS, "small", SMALL)
    settings = rc.Settings(config="small", image_hw=(48, 64), encoder_runs=1, predict_calls=1, generation_runs=0)
    side = rc.samwidgets_side("small", rc.random_state_dict("small", 0))
    result, _ = rc.measure_side(side, settings)
    assert result.generation_s is None and result.generation_masks is None
    lines = rc.comparison_table(result, result, settings).splitlines()
    assert not any("generation" in line for line in lines)
    assert any(line.startswith("| encoder s/image") for line in lines) and len(lines) == 6  # header, rule, 4 rows
