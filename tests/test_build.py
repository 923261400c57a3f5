"""Checkpoints load exactly, and a wrong one says what it is and what to do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samwidgets import CheckpointError, SamConfig, build_sam, sam_model_registry
from samwidgets.hub.build import guess_model_type


def test_build_from_file_equals_fixture(parity, tiny_config, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(parity["state_dict"], path)
    model = build_sam(tiny_config, path)
    assert not model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, parity["state_dict"][k], atol=0, rtol=0)
    assert model.pixel_mean.device.type == "cpu" and not model.pixel_mean.is_meta


@pytest.mark.parametrize("wrap", ["model", "state_dict"])
def test_wrapped_and_dataparallel_checkpoints(parity, tiny_config, tmp_path, wrap):
    sd = {f"module.{k}": v for k, v in parity["state_dict"].items()}
    path = tmp_path / "wrapped.pth"
    torch.save({wrap: sd, "epoch": 3}, path)
    build_sam(tiny_config, path)


def test_wrong_model_type_names_expected_and_guessed(parity, tmp_path):
    # a vit_b-shaped state dict (meta tensors are enough to check keys and shapes) given to vit_l
    with torch.device("meta"):
        from samwidgets import CONFIGS, Sam

        vit_b = Sam(CONFIGS["vit_b"]).state_dict()
    assert guess_model_type(vit_b) == "vit_b"
    with pytest.raises(CheckpointError) as info:
        build_sam("vit_l", vit_b, model_type="vit_l")
    msg = str(info.value)
    assert "'vit_l'" in msg and "looks like a 'vit_b' checkpoint" in msg
    assert "image_encoder.pos_embed" in msg  # first mismatched key named


def test_tiny_checkpoint_into_vit_b(parity):
    with pytest.raises(CheckpointError, match=r"does not fit the 'vit_b' model.*shape mismatches"):
        sam_model_registry["vit_b"](checkpoint=parity["state_dict"])


def test_foreign_state_dict(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="no SAM keys at all"):
        build_sam("vit_b", path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a state dict"):
        build_sam("vit_b", path)


def test_truncated_file(parity, tiny_config, tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(parity["state_dict"], path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated"):
        build_sam(tiny_config, path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights")
    with pytest.raises(CheckpointError, match="could not read"):
        build_sam("vit_b", path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        build_sam("vit_b", "/no/such/checkpoint.pth")


def test_unknown_model_type():
    with pytest.raises(ValueError, match="unknown model type 'vit_x'"):
        build_sam("vit_x")


def test_small_config_is_one_line_and_runs():
    cfg = SamConfig(image_size=256, patch_size=16, encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2,
                    encoder_global_attn_indexes=(1,), window_size=8, prompt_embed_dim=32, decoder_mlp_dim=64,
                    decoder_num_heads=2, iou_head_hidden_dim=32)
    assert cfg.embedding_size == 16 and cfg.low_res_mask_size == 64
    from samwidgets import SamPredictor

    torch.manual_seed(0)
    predictor = SamPredictor(build_sam(cfg))
    predictor.set_image(np.zeros((100, 120, 3), np.uint8))
    masks, iou, low = predictor.predict([[50, 40]], [1])
    assert masks.shape == (3, 100, 120) and low.shape == (3, 64, 64)
    assert SamConfig.from_dict(cfg.to_dict()) == cfg


def test_pickled_full_model_says_save_the_state_dict(tmp_path):
    path = tmp_path / "full_model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(CheckpointError, match=r"torch.save\(model.state_dict\(\), path\)"):
        build_sam("vit_b", path)


def test_model_does_not_alias_a_given_state_dict(parity, tiny_config):
    model = build_sam(tiny_config, parity["state_dict"])
    before = parity["state_dict"]["image_encoder.neck.1.weight"].clone()
    with torch.no_grad():
        model.image_encoder.neck[1].weight.mul_(2.0)
    torch.testing.assert_close(parity["state_dict"]["image_encoder.neck.1.weight"], before)
