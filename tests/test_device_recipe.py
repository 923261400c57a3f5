"""The GPU recipe script (recipes/bsds_cnn/device/train.sh) runs end to end on the CPU in its smoke mode,
so that it works the first time it meets a GPU: data from a carried folder, DataLoader workers, a
constant schedule with the moving average, and fp16 weights small enough to come back."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from bsds_fixture import write_bsds_photo

from samwidgets.hub.build import build_sam
from samwidgets.hub.checkpoints import config_by_name_or_file

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "recipes" / "bsds_cnn" / "device" / "train.sh"


@pytest.mark.slow
def test_device_recipe_smoke_run_on_the_cpu(tmp_path):
    data = tmp_path / "device"
    rng = np.random.default_rng(0)
    for i in range(3):  # three 96 x 128 photos, two annotators each: halves and quarters
        image = rng.integers(0, 255, (96, 128, 3), dtype="uint8")
        halves = 1 + (np.arange(128)[None, :] >= 64).repeat(96, 0).astype(np.uint16)
        quarters = halves + 2 * (np.arange(96)[:, None] >= 48).astype(np.uint16)
        write_bsds_photo(data / "bsds500", "train", f"{100 + i}", image, [halves, quarters])
    config = config_by_name_or_file(str(ROOT / "recipes" / "bsds_cnn" / "cnn_256.json"))
    torch.manual_seed(0)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in build_sam(config).state_dict().items()},
               data / "init.pt")
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "DATA": str(data), "OUT": str(out), "TRAIN_SECONDS": "321"}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["args.json", "log.csv", "weights_ema_fp16.pt",
                                                      "weights_fp16.pt"]
    assert [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())] == [1, 2, 3]
    args = json.loads((out / "args.json").read_text())
    assert (args["schedule"], args["ema"], args["workers"]) == ("constant", "0.999", "2")
    assert args["time_limit"] == "321.0"  # TRAIN_SECONDS: what tests/device/lent.sh leaves for the training
    for name in ("weights_fp16.pt", "weights_ema_fp16.pt"):
        state = torch.load(out / name, weights_only=True)
        assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
        build_sam(config, state)  # loads strictly: every key of the model, nothing else
