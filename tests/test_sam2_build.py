"""samwidgets.sam2's configurations, build_sam2 and strict checkpoint loading, and the transforms' helpers.

The reference's numbers come from tests/record/record_sam2_parity.py (run with sam2 1.1.0): every config's
resolved fields (``sam2_configs.json``), the spellings of config names its Hydra lookup accepts, and the
state-dict keys and shapes of all eight official models (``*_state_dict.txt``, video keys included).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from random_weights import read_shapes
from sam2_small import build_small, float_state_dict

from samwidgets.sam2 import (
    CONFIGS,
    SAM2Base,
    Sam2CheckpointError,
    Sam2Config,
    SAM2ImagePredictor,
    VideoWeightsIgnoredWarning,
    build_sam2,
    load_checkpoint,
)
from samwidgets.sam2.config import config_name
from samwidgets.sam2.transforms import SAM2Transforms, connected_components

DATA = Path(__file__).parent / "data"
RECORDED = json.loads((DATA / "sam2_configs.json").read_text())


def official_shapes(name: str) -> dict[str, tuple[int, ...]]:
    return read_shapes(DATA / f"{Path(name).stem}_state_dict.txt")


def meta_state_dict(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Tensors of the right shapes that take no memory (for checks of keys and shapes only)."""
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def meta_model(config: Sam2Config) -> SAM2Base:
    with torch.device("meta"):
        return SAM2Base(config)


@pytest.fixture()
def small_state_dict(small) -> dict[str, torch.Tensor]:
    return float_state_dict(small)


# ---- configurations ---------------------------------------------------------------------------------------------
def test_the_eight_official_configs_are_there():
    assert set(CONFIGS) == set(RECORDED["configs"])


@pytest.mark.parametrize("name", sorted(RECORDED["configs"]))
def test_config_numbers_are_the_references(name):
    ours = CONFIGS[name].to_dict()
    wrong = {k: (ours[k], v) for k, v in RECORDED["configs"][name].items() if ours[k] != v}
    assert not wrong, f"(ours, reference): {wrong}"


def test_pixel_normalisation_is_the_references():
    for config in CONFIGS.values():
        assert list(config.pixel_mean) == RECORDED["pixel_mean"] and list(config.pixel_std) == RECORDED["pixel_std"]


@pytest.mark.parametrize("spelling", sorted(RECORDED["name_spellings"]))
def test_config_names_are_found_as_the_reference_finds_them(spelling):
    expected = RECORDED["name_spellings"][spelling]
    if expected is None:  # the reference's Hydra lookup fails on it
        with pytest.raises(ValueError, match="unknown SAM 2 config"):
            config_name(spelling)
    else:
        assert config_name(spelling) == expected


def test_unknown_config_name_suggests_the_official_one():
    with pytest.raises(ValueError, match=r"did you mean 'configs/sam2\.1/sam2\.1_hiera_t\.yaml'"):
        build_sam2("sam2.1_hiera_t.yaml")


# ---- state dict keys, shapes and strict loading ------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RECORDED["configs"]))
def test_official_checkpoint_keys_load_strictly(name):
    """Every official key: the image path has exactly the reference's keys and shapes, the rest are video keys,
    accepted with the one warning (meta tensors: no memory, no time)."""
    shapes = official_shapes(name)
    model = meta_model(CONFIGS[name])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: shapes.get(k) for k in ours} == ours
    video = set(shapes) - set(ours)
    assert video and all(k.split(".")[0] in {"memory_attention", "memory_encoder", "maskmem_tpos_enc", "no_mem_pos_enc",
                                             "mask_downsample", "obj_ptr_proj", "no_obj_ptr", "obj_ptr_tpos_proj",
                                             "no_obj_embed_spatial"} for k in video)
    with pytest.warns(VideoWeightsIgnoredWarning, match="video is out of scope") as caught:
        load_checkpoint(model, meta_state_dict(shapes))
    assert len(caught) == 1
    assert f"{len(video)} video-only tensors" in str(caught[0].message)


def test_build_sam2_shapes_and_defaults():
    model = build_sam2("configs/sam2/sam2_hiera_t.yaml")  # device "auto": the CPU here
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not model.training
    decoder = model.sam_mask_decoder
    # apply_postprocessing=True: the reference's three overrides
    assert decoder.dynamic_multimask_via_stability and decoder.dynamic_multimask_stability_delta == 0.05 \
        and decoder.dynamic_multimask_stability_thresh == 0.98
    assert not build_sam2("sam2_hiera_t", apply_postprocessing=False, mode="train",
                          device="cpu").sam_mask_decoder.dynamic_multimask_via_stability
    shapes = official_shapes("configs/sam2/sam2_hiera_t.yaml")
    assert all(shapes[k] == tuple(v.shape) for k, v in model.state_dict().items())


def test_missing_key_is_a_clear_error(small, small_state_dict, tmp_path):
    del small_state_dict["sam_mask_decoder.conv_s0.weight"]
    path = tmp_path / "broken.pt"
    torch.save({"model": small_state_dict}, path)
    with pytest.raises(Sam2CheckpointError,
                       match=r"broken\.pt does not fit .*missing keys: sam_mask_decoder\.conv_s0\.weight"):
        build_small(small, path)


def test_unexpected_key_is_a_clear_error(small, small_state_dict):
    small_state_dict["sam_mask_decoder.extra_head.weight"] = torch.zeros(3)
    with pytest.raises(Sam2CheckpointError, match=r"unexpected keys: sam_mask_decoder\.extra_head\.weight"):
        build_small(small, {"model": small_state_dict})


def test_video_keys_are_accepted_with_one_warning_and_the_rest_is_loaded(small, small_state_dict, tmp_path):
    path = tmp_path / "small.pt"
    torch.save({"model": small_state_dict}, path)
    with pytest.warns(VideoWeightsIgnoredWarning, match=r"small\.pt: \d+ video-only tensors \(.*memory_attention"):
        model = build_sam2(small["base_config"], path, device="cpu",
                           hydra_overrides_extra=[o for o in small["overrides"] if "memory" not in o])
    for key, value in model.state_dict().items():
        assert torch.equal(value, small_state_dict[key]), key
    # the image path alone (as SAM2Base.state_dict() saves it) loads without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_checkpoint(model, model.state_dict())


def test_checkpoint_of_another_size_names_its_config():
    shapes = official_shapes("configs/sam2.1/sam2.1_hiera_b+.yaml")
    with pytest.raises(Sam2CheckpointError,
                       match=r"looks like a checkpoint of 'configs/sam2\.1/sam2\.1_hiera_b\+\.yaml'"
                             r".*shape mismatches: image_encoder\.trunk"):
        load_checkpoint(meta_model(CONFIGS["configs/sam2.1/sam2.1_hiera_t.yaml"]), meta_state_dict(shapes),
                        "configs/sam2.1/sam2.1_hiera_t.yaml")


@pytest.mark.parametrize("given, actual", [("configs/sam2/sam2_hiera_t.yaml", "configs/sam2.1/sam2.1_hiera_t.yaml"),
                                           ("configs/sam2.1/sam2.1_hiera_t.yaml", "configs/sam2/sam2_hiera_t.yaml")])
def test_checkpoint_of_the_other_version_names_its_config(given, actual):
    """SAM 2 and 2.1 share the image path; their video tensors tell them apart, and loading is strict about it."""
    with pytest.raises(Sam2CheckpointError, match=f"looks like a checkpoint of '{actual}'.*another SAM 2 version"):
        load_checkpoint(meta_model(CONFIGS[given]), meta_state_dict(official_shapes(actual)), given)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(Sam2CheckpointError, match="junk.pt"):
        build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", path, device="cpu")


def test_overrides():
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu", hydra_overrides_extra=[
        "++model.image_size=512", "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.9"],
        apply_postprocessing=False)
    assert model.image_size == 512 and model.sam_prompt_encoder.image_embedding_size == (32, 32)
    assert model.sam_mask_decoder.dynamic_multimask_stability_thresh == 0.9
    assert not model.sam_mask_decoder.dynamic_multimask_via_stability
    with pytest.raises(ValueError, match="not understood"):
        build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu", hydra_overrides_extra=["++model.nonsense=1"])
    with pytest.warns(VideoWeightsIgnoredWarning, match="video-only and ignored"):
        build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu",
                   hydra_overrides_extra=["++model.fill_hole_area=8"])


def test_predictor_requires_an_image(small, small_state_dict):
    predictor = SAM2ImagePredictor(build_small(small, small_state_dict))
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(point_coords=[[1, 1]], point_labels=[1])
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.get_image_embedding()


# ---- transforms: connected components and hole filling (the reference needs CUDA for them) -------------------
def test_connected_components_match_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    masks = rng.random((3, 1, 40, 50)) > 0.6
    labels, areas = connected_components(torch.from_numpy(masks))
    eight = np.ones((3, 3), dtype=int)
    for i in range(3):
        expected, count = ndimage.label(masks[i, 0], structure=eight)
        ours = labels[i, 0].numpy()
        assert ((ours > 0) == masks[i, 0]).all()
        # the same partition: a one-to-one map between our labels and scipy's
        pairs = {(a, b) for a, b in zip(ours[masks[i, 0]], expected[masks[i, 0]])}
        assert len(pairs) == count == len({a for a, _ in pairs})
        sizes = np.bincount(expected.ravel())
        assert np.array_equal(areas[i, 0].numpy(), np.where(expected > 0, sizes[expected], 0))


def test_holes_and_sprinkles_are_removed():
    logits = torch.full((1, 1, 12, 12), -5.0)
    logits[..., 2:10, 2:10] = 5.0  # an object
    logits[..., 5, 5] = -5.0  # a one-pixel hole in it
    logits[..., 0, 11] = 5.0  # a one-pixel speck outside
    off = SAM2Transforms(resolution=1024, mask_threshold=0.0)
    assert torch.equal(off.postprocess_masks(logits, (12, 12)), logits)  # the defaults change nothing
    on = SAM2Transforms(resolution=1024, mask_threshold=0.0, max_hole_area=1, max_sprinkle_area=1)
    out = on.postprocess_masks(logits, (12, 12))
    assert out[0, 0, 5, 5] == 10.0 and out[0, 0, 0, 11] == -10.0  # threshold +- 10
    changed = (out != logits).sum()
    assert changed == 2
