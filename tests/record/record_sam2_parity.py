"""Record the reference SAM 2 package's outputs for tests/test_sam2_parity.py (run with the reference, never in CI).

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch torchvision sam2==1.1.0 hydra-core iopath
    /tmp/ref/bin/python tests/record/record_sam2_parity.py

What it writes (all under tests/data/):

- ``sam2.1_hiera_t_state_dict.txt`` ... one per official config (8): every key and shape of the reference
  model's state dict (video keys included), one ``key<TAB>(d0, d1, ...)`` per line;
- ``sam2_configs.json``: per config, the numbers the reference resolves from its yaml and class defaults
  (the fields of samwidgets' Sam2Config), and the image transform's mean and std;
- ``sam2_parity_small.pt``: a small model (sam2.1_hiera_t with an 8-channel Hiera of 8 blocks, 256 px input,
  32-channel decoder: every stage, query pooling, windowed blocks with padding, a global block), its whole
  state dict (video keys included) and the reference's SAM2ImagePredictor outputs for many prompt cases,
  set_image_batch / predict_batch, the embeddings, and SAM2Base._forward_sam_heads (object-score gating);
- ``sam2_parity_tiny.pt``: sam2.1_hiera_t at its real size with portable random weights (made from the key
  list by ``portable_random_weights``, shared with the test through tests/random_weights.py: no weights in
  the file), a 90 x 120 image and a few prompt cases; large tensors are kept strided plus per-channel statistics.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data"
sys.path.insert(0, str(TESTS))  # tests/random_weights.py: the generators (weights, picture) the tests use too

import sam2  # noqa: E402
from random_weights import portable_random_weights, portable_uniform, test_image  # noqa: E402
from sam2.build_sam import build_sam2  # noqa: E402
from sam2.modeling.backbones.hieradet import Hiera  # noqa: E402
from sam2.modeling.backbones.image_encoder import FpnNeck  # noqa: E402
from sam2.modeling.position_encoding import PositionEmbeddingSine  # noqa: E402
from sam2.modeling.sam2_base import SAM2Base  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402

CONFIG_NAMES = [f"configs/sam2.1/sam2.1_hiera_{s}.yaml" for s in ("t", "s", "b+", "l")] + \
               [f"configs/sam2/sam2_hiera_{s}.yaml" for s in ("t", "s", "b+", "l")]

# The small model: sam2.1_hiera_t with these Hydra overrides (the test passes the same ones to samwidgets).
SMALL_OVERRIDES = [
    "++model.image_size=256",
    "model.image_encoder.trunk.embed_dim=8",
    "model.image_encoder.trunk.stages=[1,2,3,1]",
    "model.image_encoder.trunk.global_att_blocks=[4]",
    "model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
    "model.image_encoder.neck.d_model=16",
    # the video modules, shrunk so the committed state dict stays small (unused on images)
    "model.memory_attention.d_model=32",
    "model.memory_attention.num_layers=1",
    "model.memory_attention.layer.d_model=32",
    "model.memory_attention.layer.dim_feedforward=32",
    "model.memory_attention.layer.self_attention.embedding_dim=32",
    "model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "model.memory_attention.layer.cross_attention.embedding_dim=32",
    "model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "model.memory_encoder.out_dim=16",
    "++model.memory_encoder.in_dim=32",
    "++model.memory_encoder.mask_downsampler.embed_dim=32",
    "model.memory_encoder.mask_downsampler.kernel_size=4",
    "model.memory_encoder.mask_downsampler.stride=4",
    "model.memory_encoder.mask_downsampler.padding=0",
    "++model.memory_encoder.mask_downsampler.total_stride=4",
    "model.memory_encoder.fuser.layer.dim=32",
    "model.memory_encoder.fuser.num_layers=1",
    "model.memory_encoder.position_encoding.num_pos_feats=16",
]


def write_shapes(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    with open(path, "w") as f:
        for key, value in state_dict.items():
            f.write(f"{key}\t{tuple(value.shape)}\n")


def reference_numbers(name: str) -> dict:
    """The Sam2Config fields as the reference resolves them for config ``name`` (yaml, then class defaults)."""
    from hydra import compose

    cfg = compose(config_name=name).model

    def defaults(cls):
        return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}

    def plain(v):
        if hasattr(v, "__iter__") and not isinstance(v, str):
            return [plain(x) for x in v]
        return v

    trunk, neck, pos = cfg.image_encoder.trunk, cfg.image_encoder.neck, cfg.image_encoder.neck.position_encoding
    hiera_d, neck_d, pos_d, base_d = defaults(Hiera), defaults(FpnNeck), defaults(PositionEmbeddingSine), \
        defaults(SAM2Base)
    out = {}
    for f in ("embed_dim", "num_heads", "stages", "global_att_blocks", "window_pos_embed_bkg_spatial_size",
              "window_spec", "q_pool", "q_stride", "dim_mul", "head_mul"):
        out[f] = plain(trunk.get(f, hiera_d[f]))
    for f in ("d_model", "backbone_channel_list", "fpn_top_down_levels", "fpn_interp_model", "fuse_type"):
        out[f] = plain(neck.get(f, neck_d.get(f)))
    out["pos_enc_num_pos_feats"] = plain(pos.num_pos_feats)
    out["pos_enc_temperature"] = plain(pos.get("temperature", pos_d["temperature"]))
    out["pos_enc_normalize"] = plain(pos.get("normalize", pos_d["normalize"]))
    out["pos_enc_scale"] = plain(pos.get("scale", pos_d["scale"]))
    out["scalp"] = plain(cfg.image_encoder.get("scalp", 0))
    for f in ("image_size", "backbone_stride", "directly_add_no_mem_embed", "use_high_res_features_in_sam",
              "multimask_output_in_sam", "iou_prediction_use_sigmoid", "pred_obj_scores", "pred_obj_scores_mlp",
              "use_multimask_token_for_obj_ptr", "fixed_no_obj_ptr", "num_maskmem", "sigmoid_scale_for_mem_enc",
              "sigmoid_bias_for_mem_enc", "use_mask_input_as_output_without_sam", "no_obj_embed_spatial",
              "use_obj_ptrs_in_encoder", "add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs",
              "use_signed_tpos_enc_to_obj_ptrs", "only_obj_ptrs_in_the_past_for_eval", "multimask_output_for_tracking",
              "multimask_min_pt_num", "multimask_max_pt_num", "use_mlp_for_obj_ptr_proj", "compile_image_encoder"):
        out[f] = plain(cfg.get(f, base_d[f]))
    return out


def build_reference(name: str, overrides=(), weights: dict | None = None):
    model = build_sam2(name, None, device="cpu", hydra_overrides_extra=list(overrides))
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    return model.eval()


def run_case(predictor, case: dict) -> dict:
    """The reference's predict() with return_logits False and True: inputs and outputs."""
    masks, iou, low_res = predictor.predict(**case)
    logits, iou_l, low_res_l = predictor.predict(**case, return_logits=True)
    assert np.array_equal(iou, iou_l) and np.array_equal(low_res, low_res_l)
    return {"inputs": case, "masks": torch.from_numpy(masks.astype(bool)), "masks_dtype": str(masks.dtype),
            "iou_predictions": torch.from_numpy(iou), "low_res_every2": torch.from_numpy(low_res[..., ::2, ::2].copy()),
            "logits": torch.from_numpy(logits)}


def describe(name: str, out: dict) -> None:
    lo = out["logits"]
    print(f"  {name:26s} masks {tuple(out['masks'].shape)} iou {out['iou_predictions'].numpy().round(3).tolist()} "
          f"logits [{lo.min():.2f}, {lo.max():.2f}] {float((lo > 0).float().mean()):.2f} positive")


def _heads_features(predictor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The set image's embedding and high-res features repeated for 4 prompts (backbone_features, high_res)."""
    embed = predictor._features["image_embed"].expand(4, -1, -1, -1)
    return embed, [f.expand(4, -1, -1, -1) for f in predictor._features["high_res_feats"]]


def record_small() -> None:
    base = "configs/sam2.1/sam2.1_hiera_t.yaml"
    model = build_reference(base, SMALL_OVERRIDES)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = portable_random_weights(shapes)
    model.load_state_dict(weights, strict=True)
    model.eval()

    image = test_image(36, 52, seed=11)
    # Prompts for SAM2Base._forward_sam_heads (input-frame pixels; the mask prompt is resized with antialiasing)
    heads_inputs = {"point_coords": torch.tensor([[[80.0, 60.0]], [[200.0, 30.0]], [[30.0, 220.0]], [[128.0, 128.0]]]),
                    "point_labels": torch.ones(4, 1, dtype=torch.int32),
                    "mask_inputs": torch.from_numpy(portable_uniform(99, 4 * 128 * 128).reshape(4, 1, 128, 128) > 0)}
    # With random weights the object score hardly depends on the prompt, and has one sign for all: make the
    # score head's last layer 32 times larger and shift its bias (float16-exact) between the four prompts'
    # scores, so that the gating shows.
    weights["sam_mask_decoder.pred_obj_score_head.layers.2.weight"] *= 32
    model.load_state_dict(weights, strict=True)
    predictor = SAM2ImagePredictor(model)
    predictor._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]
    predictor.set_image(image)
    embed, high_res = _heads_features(predictor)
    with torch.no_grad():
        points = {k: heads_inputs[k] for k in ("point_coords", "point_labels")}
        scores = model._forward_sam_heads(embed, point_inputs=points, high_res_features=high_res)[6].flatten()
    middle = float(scores.sort().values[1:3].mean())
    bias_key = "sam_mask_decoder.pred_obj_score_head.layers.2.bias"
    weights[bias_key] = (weights[bias_key] - middle).half().float()
    model.load_state_dict(weights, strict=True)
    model.eval()

    predictor = SAM2ImagePredictor(model)
    # The reference predictor assumes 1024 px input (its feature sizes are constants): set them for 256 px.
    predictor._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]
    predictor.set_image(image)
    heads_features = _heads_features(predictor)
    features = {"image_embed": predictor._features["image_embed"].clone(),
                "high_res_feats": [f.clone() for f in predictor._features["high_res_feats"]]}
    with torch.no_grad():
        backbone_out = model.forward_image(predictor._transforms(image)[None])
    input_image = predictor._transforms(image)[None]
    # the sine encodings have no weights: every 4th channel at every 8th pixel
    backbone = {"input_image_every4": strided(input_image, 4), "input_image_stats": channel_stats(input_image),
                "backbone_fpn": [f.clone() for f in backbone_out["backbone_fpn"]],
                "vision_pos_enc_every8": [strided(p[:, ::4], 8) for p in backbone_out["vision_pos_enc"]]}

    point = np.array([[20.0, 15.0]])
    cases = {
        "point": dict(point_coords=point, point_labels=np.array([1]), multimask_output=True),
        "point_single": dict(point_coords=point, point_labels=np.array([1]), multimask_output=False),
        "points_pos_neg": dict(point_coords=np.array([[40.0, 12.0], [10.0, 30.0], [45.0, 28.0]]),
                               point_labels=np.array([1, 0, 1]), multimask_output=True),
        "box": dict(box=np.array([28.0, 5.0, 50.0, 30.0]), multimask_output=False),
        "box_and_point": dict(box=np.array([5.0, 4.0, 30.0, 33.0]), point_coords=np.array([[26.0, 20.0]]),
                              point_labels=np.array([0]), multimask_output=True),
        "boxes_batch": dict(box=np.array([[28.0, 5.0, 50.0, 30.0], [5.0, 4.0, 30.0, 33.0], [0.0, 0.0, 51.0, 35.0]]),
                            multimask_output=False),
        "boxes_batch_with_points": dict(box=np.array([[28.0, 5.0, 50.0, 30.0], [5.0, 4.0, 30.0, 33.0]]),
                                        point_coords=np.array([[[40.0, 18.0]], [[12.0, 20.0]]]),
                                        point_labels=np.array([[1], [0]]), multimask_output=True),
        "normalized_coords": dict(point_coords=np.array([[0.7, 0.3], [0.2, 0.8]]), point_labels=np.array([1, 1]),
                                  multimask_output=True, normalize_coords=False),
        "no_prompt": dict(multimask_output=True),
    }
    outputs = {}
    print("small model:")
    for name, case in cases.items():
        outputs[name] = run_case(predictor, case)
        if name == "point":  # kept whole, as the mask prompt of the refinement case
            first_low_res = predictor.predict(**case)[2]
        describe(name, outputs[name])
    # Refinement: the best low-res logits of the first case as the mask prompt, with a second click
    best = int(outputs["point"]["iou_predictions"].argmax())
    refine = dict(point_coords=np.array([[20.0, 15.0], [30.0, 22.0]]), point_labels=np.array([1, 1]),
                  mask_input=first_low_res[best:best + 1], multimask_output=False)
    outputs["refine_with_mask_input"] = run_case(predictor, refine)
    describe("refine_with_mask_input", outputs["refine_with_mask_input"])
    outputs["mask_input_only"] = run_case(predictor, dict(mask_input=refine["mask_input"], multimask_output=True))
    describe("mask_input_only", outputs["mask_input_only"])

    # set_image_batch / predict_batch with two images of different sizes
    images = [test_image(40, 30, seed=12), test_image(28, 44, seed=13)]
    predictor.set_image_batch(images)
    batch_inputs = dict(point_coords_batch=[np.array([[10.0, 20.0]]), np.array([[30.0, 10.0], [5.0, 5.0]])],
                        point_labels_batch=[np.array([1]), np.array([1, 0])],
                        box_batch=[None, np.array([2.0, 2.0, 40.0, 26.0])], multimask_output=True)
    masks_b, iou_b, low_b = predictor.predict_batch(**batch_inputs)
    logits_b, _, _ = predictor.predict_batch(**batch_inputs, return_logits=True)
    batch = {"images": [torch.from_numpy(i) for i in images], "inputs": batch_inputs,
             "masks": [torch.from_numpy(m.astype(bool)) for m in masks_b],
             "iou_predictions": [torch.from_numpy(i) for i in iou_b],
             "low_res_every2": [torch.from_numpy(lo[..., ::2, ::2].copy()) for lo in low_b],
             "logits": [torch.from_numpy(lo) for lo in logits_b],
             "image_embed": predictor._features["image_embed"].clone()}
    print("  batch iou", [i.round(3).tolist() for i in iou_b])

    # An image larger than the input (300 x 280 -> 256 x 256): the resize downsamples, with antialiasing
    large = test_image(300, 280, seed=14)
    predictor.set_image(large)
    large_case = dict(point_coords=np.array([[150.0, 100.0]]), point_labels=np.array([1]), multimask_output=True)
    logits_l, iou_l, low_l = predictor.predict(**large_case, return_logits=True)
    large_image = {"shape": large.shape, "pixel_sum": int(large.astype(np.int64).sum()), "inputs": large_case,
                   "image_embed": predictor._features["image_embed"].clone(),
                   "logits_every8": torch.from_numpy(logits_l[..., ::8, ::8].copy()),
                   "iou_predictions": torch.from_numpy(iou_l),
                   "low_res_every2": torch.from_numpy(low_l[..., ::2, ::2].copy())}
    print("  large image iou", iou_l.round(3).tolist())

    # SAM2Base._forward_sam_heads: the decode with object-score gating, 4 prompts on one image
    heads = {}
    with torch.no_grad():
        points = {k: heads_inputs[k] for k in ("point_coords", "point_labels")}
        for variant, kwargs in (("points_multi", dict(multimask_output=True)),
                                ("points_and_mask_single", dict(multimask_output=False,
                                                                mask_inputs=heads_inputs["mask_inputs"]))):
            out = model._forward_sam_heads(heads_features[0], point_inputs=points,
                                           high_res_features=heads_features[1], **kwargs)
            heads[variant] = {"low_res_multimasks_every2": strided(out[0], 2), "high_res_every16": strided(out[1], 16),
                              "ious": out[2].clone(), "low_res_masks_every2": strided(out[3], 2),
                              "object_score_logits": out[6].clone()}
            print(f"  heads {variant}: object scores {out[6].flatten().numpy().round(3).tolist()}, "
                  f"{int((out[0] == -1024).all(dim=(1, 2, 3)).sum())} of 4 prompts gated to -1024")

    record = {
        "about": "reference sam2 1.1.0 SAM2ImagePredictor outputs for sam2.1_hiera_t shrunk by the overrides, "
                 "with portable_random_weights",
        "torch": torch.__version__, "sam2": getattr(sam2, "__version__", "1.1.0"),
        "base_config": base, "overrides": SMALL_OVERRIDES,
        # the weights are float16-exact (see portable_random_weights): stored in float16, loaded back as float32
        "state_dict": {k: v.half() for k, v in weights.items()},
        "image": torch.from_numpy(image), "features": features, "backbone": backbone, "cases": outputs,
        "batch": batch, "large_image": large_image, "heads": heads, "heads_inputs": heads_inputs,
        "object_score_bias_shift": -middle,
        "object_score_weight_scale": 32,
        "dynamic_multimask_via_stability": model.sam_mask_decoder.dynamic_multimask_via_stability,
    }
    out = DATA / "sam2_parity_small.pt"
    torch.save(record, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


def strided(x: torch.Tensor, step: int) -> torch.Tensor:
    return x[..., ::step, ::step].clone()


def channel_stats(x: torch.Tensor) -> dict:
    """Per-channel mean and std of a 1 x C x H x W map (they see every pixel)."""
    return {"mean": x[0].mean(dim=(1, 2)).clone(), "std": x[0].std(dim=(1, 2)).clone()}


def record_tiny() -> None:
    name = "configs/sam2.1/sam2.1_hiera_t.yaml"
    model = build_reference(name)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(portable_random_weights(shapes), strict=True)
    model.eval()
    image = test_image(90, 120, seed=21)
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    embed = predictor._features["image_embed"]
    s0, s1 = predictor._features["high_res_feats"]
    cases = {
        "point": dict(point_coords=np.array([[70.0, 30.0]]), point_labels=np.array([1]), multimask_output=True),
        "box_and_negative_point": dict(box=np.array([10.0, 8.0, 80.0, 70.0]), point_coords=np.array([[60.0, 40.0]]),
                                       point_labels=np.array([0]), multimask_output=False),
        "two_boxes": dict(box=np.array([[10.0, 8.0, 80.0, 70.0], [60.0, 20.0, 118.0, 88.0]]), multimask_output=False),
        "points_pos_neg": dict(point_coords=np.array([[30.0, 40.0], [100.0, 60.0]]), point_labels=np.array([1, 0]),
                               multimask_output=True),
    }
    outputs = {}
    print("sam2.1_hiera_t (real size):")
    for case_name, case in cases.items():
        full = run_case(predictor, case)
        describe(case_name, full)
        full["low_res_every4"] = full.pop("low_res_every2")[..., ::2, ::2].clone()
        full["logits_every2"] = strided(full.pop("logits"), 2)
        outputs[case_name] = full
    record = {
        "about": "reference sam2 1.1.0 SAM2ImagePredictor outputs for sam2.1_hiera_t with portable_random_weights "
                 "of the official key list (tests/data/sam2.1_hiera_t_state_dict.txt)",
        "torch": torch.__version__, "sam2": getattr(sam2, "__version__", "1.1.0"), "config": name,
        "image": torch.from_numpy(image),
        "image_embed_every8": strided(embed, 8), "image_embed_stats": channel_stats(embed),
        "feat_s0_every16": strided(s0, 16), "feat_s0_stats": channel_stats(s0),
        "feat_s1_every8": strided(s1, 8), "feat_s1_stats": channel_stats(s1),
        "cases": outputs,
    }
    out = DATA / "sam2_parity_tiny.pt"
    torch.save(record, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


def record_configs() -> None:
    configs = {}
    for name in CONFIG_NAMES:
        model = build_sam2(name, None, device="cpu")
        stem = Path(name).stem
        write_shapes(DATA / f"{stem}_state_dict.txt", model.state_dict())
        configs[name] = reference_numbers(name)
        print(f"{name}: {sum(v.numel() for v in model.state_dict().values()):,} numbers in the state dict")
    # Which spellings of a config name the reference's Hydra lookup accepts, and the config each one gives
    from hydra import compose

    canonical = {json.dumps(OmegaConf.to_container(compose(config_name=n)), sort_keys=True): n for n in CONFIG_NAMES}
    spellings = {}
    for size in ("t", "b+"):
        for n in (f"configs/sam2.1/sam2.1_hiera_{size}.yaml", f"configs/sam2.1/sam2.1_hiera_{size}",
                  f"sam2.1_hiera_{size}.yaml", f"sam2.1_hiera_{size}", f"sam2_hiera_{size}.yaml", f"sam2_hiera_{size}",
                  f"configs/sam2/sam2_hiera_{size}", f"/configs/sam2.1/sam2.1_hiera_{size}.yaml",
                  f"./configs/sam2/sam2_hiera_{size}.yaml", f"configs//sam2.1/sam2.1_hiera_{size}.yaml",
                  f"sam2/configs/sam2.1/sam2.1_hiera_{size}.yaml", f"configs/sam2.1/sam2.1_hiera_{size}.YAML",
                  f"configs/sam2.1/hiera_{size}.yaml"):
            try:
                spellings[n] = canonical[json.dumps(OmegaConf.to_container(compose(config_name=n)), sort_keys=True)]
            except Exception:  # MissingConfigException: the reference does not accept it
                spellings[n] = None
    transforms = SAM2ImagePredictor(build_reference(CONFIG_NAMES[0]))._transforms
    record = {"about": "Sam2Config fields as the reference sam2 1.1.0 resolves each yaml (and its class defaults)",
              "configs": configs, "name_spellings": spellings, "pixel_mean": list(transforms.mean),
              "pixel_std": list(transforms.std)}
    (DATA / "sam2_configs.json").write_text(json.dumps(record, indent=1) + "\n")


def main() -> None:
    torch.set_num_threads(2)
    which = sys.argv[1:] or ["configs", "small", "tiny"]
    if "configs" in which:
        record_configs()
    if "small" in which:
        record_small()
    if "tiny" in which:
        record_tiny()


if __name__ == "__main__":
    main()
