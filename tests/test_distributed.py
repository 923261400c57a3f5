"""Sharding, ``python -m samwidgets embed`` and both batch commands under ``torchrun`` (2 CPU processes, gloo)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from small_configs import SMALL

from samwidgets import SamPredictor, build_sam
from samwidgets.cli.embed import main as embed_main
from samwidgets.cli.folders import collect_images
from samwidgets.io.sa1b import read_sa1b
from samwidgets.runtime.distributed import DistInfo, choose_device, dist_info, exit_process, shard, sum_over_ranks

GENERATE_FAST = ["--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"]


# -- sharding and the environment -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["strided", "contiguous"])
@pytest.mark.parametrize("n_items, world_size", [(0, 1), (1, 1), (10, 3), (7, 2), (3, 8), (16, 4)])
def test_shard_covers_every_item_once(mode, n_items, world_size):
    items = [f"img_{i:03d}.png" for i in range(n_items)]
    shuffled = list(np.random.default_rng(n_items).permutation(items))
    shards = [shard(shuffled, rank, world_size, mode=mode) for rank in range(world_size)]
    assert sorted(x for s in shards for x in s) == items  # every item in exactly one shard
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced
    # deterministic, and independent of the order the items came in
    assert shards == [shard(items, rank, world_size, mode=mode) for rank in range(world_size)]
    if world_size > n_items:  # more ranks than items: the extra ranks get nothing
        assert sum(1 for s in shards if not s) == world_size - n_items


def test_shard_modes_and_errors():
    items = list(range(6))
    assert shard(items, 1, 3) == [1, 4]
    assert shard(items, 1, 3, mode="contiguous") == [2, 3]
    assert shard([Path("b.png"), Path("a.png")], 0, 2) == [Path("a.png")]
    for rank, world_size in [(2, 2), (-1, 2), (0, 0)]:
        with pytest.raises(ValueError, match="rank|world_size"):
            shard(items, rank, world_size)
    with pytest.raises(ValueError, match="shard mode"):
        shard(items, 0, 1, mode="random")  # type: ignore[arg-type]


def test_dist_info_from_environment():
    assert dist_info({}) == DistInfo(0, 1, 0)
    info = dist_info({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert info == DistInfo(3, 4, 1) and info.is_distributed and not info.is_main
    assert info.prefix() == "[rank 3/4] " and DistInfo().prefix() == ""
    with pytest.raises(ValueError, match="RANK is not"):
        dist_info({"WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="outside"):
        dist_info({"RANK": "2", "WORLD_SIZE": "2"})
    assert sum_over_ranks([1, 2, 3]) == [1, 2, 3]  # no process group: the counts themselves
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(choose_device("auto")) == expected and str(choose_device("cpu", 3)) == "cpu"


def test_a_single_process_exits_normally():
    """exit_process leaves by os._exit only after joining a process group (see its docstring); a single
    process raises SystemExit as usual, so callers, atexit handlers and tests see it."""
    with pytest.raises(SystemExit) as info:
        exit_process(3)
    assert info.value.code == 3


# -- files for the commands --------------------------------------------------------------------------------
@pytest.fixture()
def small_model(tmp_path) -> tuple[Path, Path]:
    """A seconds-fast model as the command line takes it: a config .json and a weights file."""
    torch.manual_seed(0)
    torch.save(build_sam(SMALL).state_dict(), tmp_path / "small.pt")
    (tmp_path / "small.json").write_text(json.dumps(SMALL.to_dict()))
    return tmp_path / "small.json", tmp_path / "small.pt"


@pytest.fixture()
def images(tmp_path) -> Path:
    """Five small RGB images of different sizes."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 56), (64, 48), (30, 30), (50, 70), (64, 64)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"img_{i}.png")
    return folder


def model_args(small_model: tuple[Path, Path]) -> list[str]:
    return ["--model", str(small_model[0]), "--weights", str(small_model[1]), "--device", "cpu", "--no-progress"]


@pytest.fixture()
def one_thread():
    """One torch thread in this process (as the torchrun runs get), restored afterwards: the tiny model
    runs many times faster than with threads fighting over a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count_encoder_calls(model, monkeypatch) -> list[int]:
    calls = [0]
    forward = model.image_encoder.forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.image_encoder, "forward", counted)
    return calls


# -- embed, one process --------------------------------------------------------------------------------------
def test_embed_fills_the_predictors_disk_cache(images, small_model, tmp_path, capsys, monkeypatch, one_thread):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    out = tmp_path / "emb"
    assert embed_main([str(images), "--out", str(out), *model_args(small_model)]) == 1  # broken.png
    captured = capsys.readouterr()
    assert "5 written, 0 skipped (embedding already there), 1 failed" in captured.out
    assert "failed images:" in captured.err and "broken.png" in captured.err
    assert len(list(out.glob("*.pt"))) == 5

    # a fresh predictor on the same weights reads them: the image encoder never runs, the masks are the same
    sam = build_sam(SMALL, torch.load(small_model[1], weights_only=True))
    calls = count_encoder_calls(sam, monkeypatch)
    cached = SamPredictor(sam, disk_cache=out)
    uncached = SamPredictor(build_sam(SMALL, torch.load(small_model[1], weights_only=True)))
    for path in sorted(images.glob("img_*.png")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        cached.set_image(rgb)
        assert cached.last_set_image_cached
        uncached.set_image(rgb)
        point = np.array([[rgb.shape[1] // 2, rgb.shape[0] // 2]])
        got, want = cached.predict(point, np.array([1])), uncached.predict(point, np.array([1]))
        assert np.array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    assert calls[0] == 0
    assert cached.cache.hits == 5 and cached.cache.misses == 0

    # resume: nothing is encoded again; a deleted file is made again
    victim = sorted(out.glob("*.pt"))[0]
    victim.unlink()
    (images / "broken.png").unlink()
    assert embed_main([str(images), "--out", str(out), *model_args(small_model)]) == 0
    assert "1 written, 4 skipped (embedding already there), 0 failed" in capsys.readouterr().out
    assert victim.is_file()

    # a file that fails its checksum (same size, a flipped byte) is made again, and said
    good = victim.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    victim.write_bytes(bytes(damaged))
    with pytest.warns(RuntimeWarning, match="discarding corrupt embedding cache file"):
        assert embed_main([str(images), "--out", str(out), *model_args(small_model)]) == 0
    assert "1 written, 4 skipped (embedding already there), 0 failed, 1 redone" in capsys.readouterr().out
    assert torch.equal(torch.load(victim, weights_only=True)["features"],
                       torch.load(io.BytesIO(good), weights_only=True)["features"])

    # another model's embeddings are not mixed up with these: a different key for every image
    torch.manual_seed(1)
    other = SamPredictor(build_sam(SMALL), disk_cache=out)
    other.set_image(np.asarray(Image.open(images / "img_0.png").convert("RGB")))
    assert not other.last_set_image_cached


# -- torchrun ----------------------------------------------------------------------------------------------
def torchrun(command: str, args: list[str], cwd: Path) -> dict[int, tuple[int, int, int]]:
    """Run ``torchrun --standalone --nproc_per_node=2 -m samwidgets command args``; {rank: (written, skipped, failed)}.

    Checks the totals line rank 0 prints against the sum of the per-rank lines.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "samwidgets", command, *args],
                            capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = r"(\d+) written, (\d+) skipped \([^)]*\), (\d+) failed"
    per_rank = {int(m[0]): tuple(map(int, m[1:])) for m in re.findall(r"\[rank (\d)/2\] " + counts, result.stdout)}
    assert sorted(per_rank) == [0, 1], result.stdout
    totals = re.findall(r"\[all 2 ranks\] " + counts, result.stdout)
    assert len(totals) == 1, result.stdout
    assert tuple(map(int, totals[0])) == tuple(map(sum, zip(*per_rank.values())))
    return per_rank


@pytest.mark.slow
def test_torchrun_generate_shards_and_resumes(images, small_model, tmp_path):
    out = tmp_path / "masks"
    args = [str(images), "--out", str(out), *model_args(small_model), *GENERATE_FAST]
    shards = [shard(collect_images([images]), rank, 2) for rank in range(2)]

    # 5 files written in all, 5 files exist: each image was done by exactly one rank
    assert torchrun("generate", args, tmp_path) == {0: (3, 0, 0), 1: (2, 0, 0)}
    assert sorted(p.name for p in out.iterdir()) == [f"img_{i}.json" for i in range(5)]
    assert read_sa1b(out / "img_3.json")["image"]["width"] == 70

    assert torchrun("generate", args, tmp_path) == {0: (0, 3, 0), 1: (0, 2, 0)}  # all skipped

    # rank 1's outputs lost: the rerun makes those again and leaves rank 0's alone
    kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for path in shards[1]:
        (out / f"{path.stem}.json").unlink()
    assert torchrun("generate", args, tmp_path) == {0: (0, 3, 0), 1: (2, 0, 0)}
    for path in shards[0]:
        assert (out / f"{path.stem}.json").stat().st_mtime_ns == kept[f"{path.stem}.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(kept)


@pytest.mark.slow
def test_torchrun_embed_shards_and_resumes(images, small_model, tmp_path, monkeypatch, one_thread):
    out = tmp_path / "emb"
    args = [str(images), "--out", str(out), *model_args(small_model)]
    assert torchrun("embed", args, tmp_path) == {0: (3, 0, 0), 1: (2, 0, 0)}
    files = sorted(out.glob("*.pt"))
    assert len(files) == 5 and not list(out.glob(".*.tmp"))  # no temporary file left behind

    # the predictor finds every image there without encoding
    sam = build_sam(SMALL, torch.load(small_model[1], weights_only=True))
    calls = count_encoder_calls(sam, monkeypatch)
    predictor = SamPredictor(sam, cache_size=0, disk_cache=out)
    key_of = {}
    for path in collect_images([images]):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        key_of[path] = predictor.cache_key(rgb)
        predictor.set_image(rgb)
        assert predictor.last_set_image_cached
    assert calls[0] == 0 and {p.stem for p in files} == set(key_of.values())

    # rank 0's files lost (its shard: img_0, img_2, img_4): only those are made again
    shards = [shard(collect_images([images]), rank, 2) for rank in range(2)]
    for path in shards[0]:
        (out / f"{key_of[path]}.pt").unlink()
    kept = {path: (out / f"{key_of[path]}.pt").stat().st_mtime_ns for path in shards[1]}
    assert torchrun("embed", args, tmp_path) == {0: (3, 0, 0), 1: (0, 2, 0)}
    assert sorted(out.glob("*.pt")) == files
    assert kept == {path: (out / f"{key_of[path]}.pt").stat().st_mtime_ns for path in shards[1]}
