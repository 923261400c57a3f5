"""``python -m samwidgets train`` on COCO data (RLE and polygons): logs, atomic checkpoints, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from small_configs import SMALL

from samwidgets import build_sam
from samwidgets.cli.train import main
from samwidgets.errors import UserInputError
from samwidgets.io.atomic import atomic_write
from samwidgets.io.coco import write_coco
from samwidgets.training.datasets import CocoSource, ProceduralSource, step_batches
from samwidgets.training.schedule import constant_factor, lr_factor, schedule_factor


def write_coco_folder(tmp_path: Path) -> Path:
    """Three 96 x 72 images, each with an RLE rectangle and a polygon triangle, and their COCO file."""
    images, anns = [], []
    for i in range(3):
        img = np.full((72, 96, 3), 30, np.uint8)
        img[10:40, 20 + i : 60 + i] = (220, 40, 40)
        img[45:70, 5:40] = (40, 200, 60)
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
        images.append({"id": i + 1, "file_name": f"img{i}.png", "height": 72, "width": 96})
        rect = np.zeros((72, 96), np.uint8, order="F")
        rect[10:40, 20 + i : 60 + i] = 1
        rle = mask_utils.encode(rect)
        rle["counts"] = rle["counts"].decode()
        anns.append({"id": 2 * i + 1, "image_id": i + 1, "category_id": 1, "segmentation": rle,
                     "area": int(rect.sum()), "bbox": [20 + i, 10, 40, 30], "iscrowd": 0})
        anns.append({"id": 2 * i + 2, "image_id": i + 1, "category_id": 1,
                     "segmentation": [[5, 45, 40, 45, 5, 70]], "area": 437.5, "bbox": [5, 45, 35, 25], "iscrowd": 0})
    write_coco(tmp_path / "instances.json", images, anns)
    return tmp_path


@pytest.fixture()
def coco_folder(tmp_path):
    return write_coco_folder(tmp_path)


def test_coco_source_resizes_and_pads(coco_folder):
    source = CocoSource(coco_folder, coco_folder / "instances.json", image_size=64)
    batch = source.batch(step=0, num_images=2, masks_per_image=3)
    assert batch.images.shape == (2, 3, 64, 64) and batch.targets.shape == (6, 64, 64)
    assert batch.image_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert not batch.images[:, :, 48:, :].any()  # 72 x 96 -> 48 x 64, padded below
    assert not batch.targets[:, 48:, :].any() and batch.targets.flatten(1).any(1).all()


def test_lr_schedule_warms_up_then_decays():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100) == pytest.approx(0.55)


def test_constant_schedule_warms_up_then_never_decays():
    assert constant_factor(0, 10) == pytest.approx(0.1)
    assert [constant_factor(s, 10) for s in (9, 10, 10_000, 10**7)] == [1.0] * 4
    assert schedule_factor("constant", 50_000, 10, 100) == 1.0  # past --steps too: a campaign's total is open
    assert schedule_factor("cosine", 100, 10, 100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule_factor("linear", 0, 10, 100)


@pytest.mark.slow
def test_train_resume_and_finetune(coco_folder, tmp_path):
    config_json = tmp_path / "small.json"
    config_json.write_text(json.dumps(SMALL.to_dict()))
    out = tmp_path / "run"
    common = ["--model", str(config_json), "--coco-images", str(coco_folder), "--coco-annotations",
              str(coco_folder / "instances.json"), "--images-per-step", "2", "--masks-per-image", "2",
              "--rounds", "3", "--warmup", "2", "--save-every", "2", "--out", str(out), "--no-progress"]
    assert main(common + ["--steps", "2"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2
    assert main(common + ["--steps", "4", "--resume"]) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    weights = torch.load(out / "weights.pt", weights_only=True)
    model = build_sam(SMALL, out / "weights.pt")  # loads strictly
    assert set(weights) == set(model.state_dict())
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    # fine-tune from those weights with a frozen image encoder: the encoder must not move
    out2 = tmp_path / "ft"
    ft = [a if a != str(out) else str(out2) for a in common]
    assert main(ft + ["--steps", "2", "--weights", str(out / "weights.pt"), "--freeze-image-encoder"]) == 0
    tuned = torch.load(out2 / "weights.pt", weights_only=True)
    for k in weights:
        if k.startswith("image_encoder."):
            torch.testing.assert_close(tuned[k], weights[k], rtol=0, atol=0)
    assert any(not torch.equal(tuned[k], weights[k]) for k in weights if k.startswith("mask_decoder."))


@pytest.mark.slow
def test_a_run_interrupted_by_a_signal_resumes_to_the_same_weights(coco_folder, tmp_path, monkeypatch):
    """Ctrl-C (SIGINT) during step 5 of 6, then --resume: the weights of a run that was never interrupted."""
    import os
    import signal
    import time

    from samwidgets.cli import train as train_cli

    config_json = tmp_path / "small.json"
    config_json.write_text(json.dumps(SMALL.to_dict()))

    def args(out):
        return ["--model", str(config_json), "--coco-images", str(coco_folder), "--coco-annotations",
                str(coco_folder / "instances.json"), "--images-per-step", "2", "--masks-per-image", "2",
                "--rounds", "3", "--warmup", "2", "--steps", "6", "--save-every", "2", "--out", str(out),
                "--no-progress"]

    assert main(args(tmp_path / "straight")) == 0

    real_step, calls = train_cli.training_step, []

    def step_then_signal(*a, **kw):
        calls.append(1)
        if len(calls) == 5:  # the 5th step: after the checkpoint of step 4, before the end
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the signal arrives here, as a KeyboardInterrupt
        return real_step(*a, **kw)

    out = tmp_path / "interrupted"
    monkeypatch.setattr(train_cli, "training_step", step_then_signal)
    with pytest.raises(KeyboardInterrupt):
        main(args(out))
    at_step_4 = torch.load(out / "checkpoint.pt", weights_only=False)
    assert at_step_4["step"] == 4
    assert not (out / "weights.pt").exists()
    monkeypatch.setattr(train_cli, "training_step", real_step)
    assert main(args(out) + ["--resume"]) == 0

    assert [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())] == [1, 2, 3, 4, 5, 6]
    straight = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    resumed = torch.load(out / "weights.pt", weights_only=True)
    assert set(straight) == set(resumed)
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=1e-5, atol=1e-6, msg=k)
    assert any(not torch.equal(resumed[k], at_step_4["model"][k]) for k in resumed)  # steps 5 and 6 did train


def test_procedural_source_skips_scenes_without_masks():
    from samwidgets.training.datasets import ProceduralSource

    source = ProceduralSource(image_size=64)
    assert len(source.generator(52).masks) == 0  # at 64 px this seed loses every object
    batch = source.batch(step=13, num_images=4, masks_per_image=2)  # seeds 52..55
    assert batch.images.shape == (4, 3, 64, 64) and batch.targets.flatten(1).any(1).all()


def _small_run_args(tmp_path, coco_folder, out, steps):
    config_json = tmp_path / "small.json"
    config_json.write_text(json.dumps(SMALL.to_dict()))
    return ["--model", str(config_json), "--coco-images", str(coco_folder), "--coco-annotations",
            str(coco_folder / "instances.json"), "--images-per-step", "2", "--masks-per-image", "2",
            "--rounds", "3", "--warmup", "2", "--steps", str(steps), "--save-every", "2", "--out", str(out),
            "--no-progress"]


def test_resume_logs_each_step_once_when_steps_ran_after_the_last_checkpoint(coco_folder, tmp_path):
    """A run stopped after step 3 was logged (checkpoint at 2) runs step 3 again on --resume: logged once."""
    import shutil

    out = tmp_path / "run"
    assert main(_small_run_args(tmp_path, coco_folder, out, 3) + ["--save-every", "2"]) == 0
    # the state of a run killed right after step 3's log row: its last checkpoint is step 2's
    shutil.copy(out / "log.csv", tmp_path / "log_at_3.csv")
    assert main(_small_run_args(tmp_path, coco_folder, tmp_path / "two", 2)) == 0
    shutil.copy(tmp_path / "two" / "checkpoint.pt", out / "checkpoint.pt")
    shutil.copy(tmp_path / "log_at_3.csv", out / "log.csv")
    assert [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())] == [1, 2, 3]

    assert main(_small_run_args(tmp_path, coco_folder, out, 5) + ["--resume"]) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(r["utc"] for r in rows)  # each row says when its step ended: sessions show in the log


def test_resume_of_a_log_without_the_time_column(coco_folder, tmp_path):
    """A log written before the utc column existed is kept, cut back to the checkpoint, with the column added."""
    out = tmp_path / "run"
    assert main(_small_run_args(tmp_path, coco_folder, out, 2)) == 0
    lines = (out / "log.csv").read_text().splitlines()
    old = [",".join(line.split(",")[:-1]) for line in lines]  # drop the last column (utc)
    (out / "log.csv").write_text("\n".join(old + ["3,1e-4,0.5,point,0,0,0,0,0,0,0.1"]) + "\n")
    assert main(_small_run_args(tmp_path, coco_folder, out, 3) + ["--resume"]) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert rows[0]["utc"] == "" and rows[2]["utc"] != "" and rows[2]["loss"] != "0.5"


def test_ema_weights_are_written_and_survive_a_resume(coco_folder, tmp_path):
    """--ema writes the moving average with each checkpoint; a resumed run ends with the straight run's."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    ema = ["--ema", "0.9", "--schedule", "constant"]
    assert main(_small_run_args(tmp_path, coco_folder, straight, 4) + ema) == 0
    assert main(_small_run_args(tmp_path, coco_folder, resumed, 2) + ema) == 0
    assert main(_small_run_args(tmp_path, coco_folder, resumed, 4) + ema + ["--resume"]) == 0
    a = torch.load(straight / "weights_ema.pt", weights_only=True)
    b = torch.load(resumed / "weights_ema.pt", weights_only=True)
    raw = torch.load(straight / "weights.pt", weights_only=True)
    build_sam(SMALL, straight / "weights_ema.pt")  # loads strictly
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    assert any(not torch.equal(a[k], raw[k]) for k in a if a[k].is_floating_point())
    lrs = [float(r["lr"]) for r in csv.DictReader((straight / "log.csv").open())]
    assert lrs[1:] == [lrs[1]] * 3  # constant after the 2-step warm-up


def test_batches_are_the_same_with_worker_processes():
    """A DataLoader with workers prepares exactly the batches the main process would, in step order."""
    source = ProceduralSource(64, seed_offset=123)
    serial = list(step_batches(source, 5, 9, 2, 3))
    parallel = list(step_batches(source, 5, 9, 2, 3, workers=2))
    assert len(serial) == len(parallel) == 4
    for x, y in zip(serial, parallel):
        assert torch.equal(x.images, y.images) and torch.equal(x.targets, y.targets)
        assert torch.equal(x.image_index, y.image_index)
    assert not torch.equal(serial[0].images, serial[1].images)


def test_train_only_the_iou_head(coco_folder, tmp_path):
    """--train-only mask_decoder.iou_prediction_head moves the IoU head and nothing else (the masks stay)."""
    start = tmp_path / "start.pt"
    torch.manual_seed(0)
    torch.save(build_sam(SMALL).state_dict(), start)
    out = tmp_path / "head"
    assert main(_small_run_args(tmp_path, coco_folder, out, 2)
                + ["--weights", str(start), "--train-only", "mask_decoder.iou_prediction_head"]) == 0
    before, after = torch.load(start, weights_only=True), torch.load(out / "weights.pt", weights_only=True)
    moved = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert moved and all(k.startswith("mask_decoder.iou_prediction_head.") for k in moved), moved
    with pytest.raises(UserInputError, match="no parameter of this model starts with"):
        main(_small_run_args(tmp_path, coco_folder, tmp_path / "bad", 1) + ["--train-only", "mask_decoder.iou_hed"])


class Interrupted(KeyboardInterrupt):
    """The interruption these tests inject (Ctrl-C, or the session ending), at a chosen point of the run."""


def _interrupt_at_step(train_cli, monkeypatch, step, mid_step):
    """Stop the run as step ``step`` starts (mid_step=False), or after its update but before its log row."""
    real_step, calls = train_cli.training_step, []

    def step_then_stop(*a, **kw):
        calls.append(1)
        if len(calls) == step and not mid_step:
            raise Interrupted
        result = real_step(*a, **kw)
        if len(calls) == step:  # the weights are updated, in memory only
            raise Interrupted
        return result

    monkeypatch.setattr(train_cli, "training_step", step_then_stop)


def _interrupt_in_save(train_cli, monkeypatch, step, file_name, partial):
    """Stop the run when it saves ``file_name`` at ``step``: before the write, or with part of the file written."""
    real_save, last_checkpoint = train_cli.atomic_torch_save, []

    def save_then_stop(obj, path):
        name = Path(path).name
        # the moving average is saved right after its step's checkpoint
        at = obj["step"] if name == "checkpoint.pt" else (last_checkpoint[-1] if last_checkpoint else None)
        if name == file_name and at == step:
            if partial:
                def part_then_stop(f):
                    f.write(b"PK\x03\x04 the first bytes of a checkpoint")
                    raise Interrupted

                atomic_write(path, part_then_stop)
            raise Interrupted
        saved = real_save(obj, path)
        if name == "checkpoint.pt":
            last_checkpoint.append(obj["step"])
        return saved

    monkeypatch.setattr(train_cli, "atomic_torch_save", save_then_stop)


#: where the run stops -> (how, the checkpoint's step it resumes from); 6 steps, a checkpoint every 2
INTERRUPTIONS = {
    "in step 5, after its update, before its row": (lambda tc, mp: _interrupt_at_step(tc, mp, 5, mid_step=True), 4),
    "after step 4's row and checkpoint": (lambda tc, mp: _interrupt_at_step(tc, mp, 5, mid_step=False), 4),
    "after step 5's row, between checkpoints": (lambda tc, mp: _interrupt_at_step(tc, mp, 6, mid_step=False), 4),
    "after step 4's row, before its checkpoint": (
        lambda tc, mp: _interrupt_in_save(tc, mp, 4, "checkpoint.pt", partial=False), 2),
    "during the write of step 4's checkpoint": (
        lambda tc, mp: _interrupt_in_save(tc, mp, 4, "checkpoint.pt", partial=True), 2),
    "between step 4's checkpoint and its moving average": (
        lambda tc, mp: _interrupt_in_save(tc, mp, 4, "weights_ema.pt", partial=True), 4),
}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """The uninterrupted run the interrupted ones must match: 6 steps, a checkpoint every 2, a moving average."""
    root = tmp_path_factory.mktemp("resume")
    coco = write_coco_folder(root)
    assert main(_small_run_args(root, coco, root / "straight", 6) + RESUME_EXTRA) == 0
    return coco, root / "straight"


RESUME_EXTRA = ["--ema", "0.9", "--schedule", "constant"]


@pytest.mark.parametrize("where", list(INTERRUPTIONS))
def test_resume_after_an_interruption_anywhere_gives_the_straight_run(straight_run, tmp_path, monkeypatch, where):
    """Interrupted at ``where``, then --resume: the uninterrupted run's weights and average, each step logged once."""
    from samwidgets.cli import train as train_cli

    coco, straight = straight_run
    interrupt, resumes_from = INTERRUPTIONS[where]
    out = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        interrupt(train_cli, patch)
        with pytest.raises(Interrupted):
            main(_small_run_args(tmp_path, coco, out, 6) + RESUME_EXTRA)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == resumes_from
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")], "a half-written file was left"
    assert main(_small_run_args(tmp_path, coco, out, 6) + RESUME_EXTRA + ["--resume"]) == 0

    assert [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())] == [1, 2, 3, 4, 5, 6]
    for name in ("weights.pt", "weights_ema.pt"):
        want = torch.load(straight / name, weights_only=True)
        got = torch.load(out / name, weights_only=True)
        assert set(got) == set(want)
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, msg=f"{name}: {k}")
