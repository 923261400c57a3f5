"""Record the reference sam2 package's automatic mask generator for tests/test_sam2_amg.py (run with the reference,
never in CI).

    /work/refenv/bin/python tests/record/record_sam2_amg.py      # sam2 1.1.0, torch, torchvision, hydra, scipy

The model is the small one of ``tests/data/sam2_parity_small.pt`` (sam2.1_hiera_t shrunk by Hydra overrides,
portable random weights, recorded by record_sam2_parity.py), with part of its mask decoder trained here first.
With the random weights alone every mask covers the whole image (the predicted IoUs stay below 0.55 and the
stability scores below 0.15): the reference's default thresholds keep nothing, and with them lowered, box
NMS leaves one full-image mask and every crop mask touches its crop's edge, so the generator's steps would
go untested. :func:`train_decoder` therefore trains the decoder's attention, tokens, upscaling,
hypernetworks and the IoU head's last layer (about 9,000 numbers; the image encoder and the 2048-wide
MLPs stay random) for 600 steps to segment the regions of the test image (the red disc, the green
rectangle, their overlap, the background) from one click, and to predict its masks' IoU. The trained
numbers are stored (float16-exact) in the fixture; the test loads them over the parity model's weights.
Then the default thresholds keep 4 masks; the other settings lower them where noted.

The image is 64 x 96 (the picture generator of record_sam2_parity.py). For each setting of SETTINGS,
``SAM2AutomaticMaskGenerator(model, points_per_side=8, **kwargs).generate(image)`` is run (a setting may
give fewer points per side) and every record is kept:

- ``mask_bits``: the masks, K x (H * W / 8) packed bits (``np.packbits`` of each row-major H x W mask); for
  "uncompressed_rle" also the reference's counts lists as they are;
- ``near_threshold``: 2 x M (record, flat pixel index in the image) of the pixels whose logit was within 1e-3
  of the mask threshold when the reference thresholded them (a 1e-4 difference may flip them; the test
  ignores them). They are caught by wrapping the reference's ``calculate_stability_score``, which sees the
  full-size logits of every mask that passed the IoU filter;
- area, bbox, predicted_iou, point_coords, stability_score, crop_box, as the reference returns them.

``min_mask_region_area`` needs the reference's CUDA extension (``sam2._C.get_connected_componnets``); without it
the reference warns and skips the step. Here it is replaced by an 8-connected labelling with scipy (what the
kernel computes: a label and the component's area for every foreground pixel), so that the setting can be
recorded on a CPU.
"""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

RECORD_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECORD_DIR))
DATA = RECORD_DIR.parent / "data"

import sam2.automatic_mask_generator as reference_amg  # noqa: E402
from record_sam2_parity import test_image  # noqa: E402  (the same picture generator as the parity record)
from sam2.build_sam import build_sam2  # noqa: E402

NEAR = 1e-3  # a logit this close to the threshold may flip with a 1e-4 difference
POINTS_PER_SIDE = 8
IMAGE_HW = (64, 96)
CROPS = {"crop_n_layers": 1, "crop_n_points_downscale_factor": 2, "crop_overlap_ratio": 0.6}  # 8 x 8, then 4 x 4
SETTINGS = {
    "defaults": {},  # pred_iou_thresh 0.8, stability_score_thresh 0.95: 4 masks with the trained decoder
    # the decoder was not trained with mask prompts: the refined masks' IoUs are lower, so are the thresholds
    "use_m2m": {"use_m2m": True, "pred_iou_thresh": 0.3, "stability_score_thresh": 0.5, "points_per_side": 6},
    # crops of the 64 px short side: larger overlap, so that some objects fit in a crop
    "crop_n_layers_1": {**CROPS, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.8},
    # no filters: poor masks and empty ones too (the reference's stability score of an empty mask is NaN)
    "crops_no_filters": {**CROPS, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
    "single_mask_uncompressed_rle": {"multimask_output": False, "output_mode": "uncompressed_rle",
                                     "points_per_batch": 24, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.5,
                                     "box_nms_thresh": 0.9},
    # 4 x 4 points: the hole and speck clean-up (connected components of every low-res mask) is the slow part
    "min_mask_region_area": {"min_mask_region_area": 20, "pred_iou_thresh": 0.5, "stability_score_thresh": 0.8,
                             "points_per_side": 4},
}


def image_regions(h: int, w: int) -> np.ndarray:
    """The regions of ``test_image(h, w, seed)``: 0 the red disc only, 1 the green rectangle only, 2 both,
    3 the background; H x W int (the same formulas as test_image)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    disc = ((x - 0.35) ** 2 + (y - 0.4) ** 2) < 0.06
    rect = (x > 0.55) & (y > 0.2) & (y < 0.7)
    return np.select([disc & ~rect, rect & ~disc, disc & rect], [0, 1, 2], default=3)


def is_trained(name: str) -> bool:
    """The decoder's parameters train_decoder trains: all but the 2048-wide MLPs, the IoU head's hidden layers,
    the object-score head and conv_s0 / conv_s1 (part of the image features)."""
    return (name.startswith("sam_mask_decoder.") and ".mlp." not in name and "conv_s" not in name
            and "obj_score" not in name and not name.startswith("sam_mask_decoder.iou_prediction_head.layers.0")
            and not name.startswith("sam_mask_decoder.iou_prediction_head.layers.1"))


def train_decoder(model, image: np.ndarray, steps: int = 600, batch: int = 32) -> dict[str, torch.Tensor]:
    """Train part of the decoder (:func:`is_trained`) to segment the region of ``image`` under a click.

    Every step clicks ``batch`` random pixels; masks 0, 2 and 3 learn the clicked region, mask 1 a disc of
    10 px around the click within it (it hardly learns it: the small decoder's upscaled features have 2
    channels), and the IoU head the masks' IoUs. Loss: binary cross-entropy + Dice at the image's size, plus
    the IoU head's squared error. Returns the trained tensors rounded to float16 (loaded into ``model``).
    """
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    h, w = image.shape[:2]
    regions = image_regions(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    predictor = SAM2ImagePredictor(model)
    predictor._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]
    predictor.set_image(image)
    embed, high_res = predictor._features["image_embed"], predictor._features["high_res_feats"]
    decoder, prompt_encoder = model.sam_mask_decoder, model.sam_prompt_encoder
    params = dict(model.named_parameters())
    trained = [n for n in params if is_trained(n)]
    for name, p in params.items():
        p.requires_grad_(name in trained)
    optimizer = torch.optim.Adam([params[n] for n in trained], lr=5e-3)
    decoder.train()
    for step in range(steps):
        px, py = rng.integers(0, w, batch), rng.integers(0, h, batch)
        region = regions[py, px][:, None, None] == regions[None]  # B x H x W
        disc = ((xx[None] - px[:, None, None]) ** 2 + (yy[None] - py[:, None, None]) ** 2) < 100
        target = torch.from_numpy(np.stack([region, region & disc, region, region], axis=1)).float()  # B x 4 x H x W
        coords = torch.tensor(np.stack([(px + 0.5) / w * 256, (py + 0.5) / h * 256], 1), dtype=torch.float32)
        sparse, dense = prompt_encoder(points=(coords[:, None], torch.ones(batch, 1, dtype=torch.int32)), boxes=None,
                                       masks=None)
        low_res, iou_pred, _, _ = decoder.predict_masks(embed, prompt_encoder.get_dense_pe(), sparse, dense,
                                                        repeat_image=True, high_res_features=high_res)
        logits = torch.nn.functional.interpolate(low_res, (h, w), mode="bilinear", align_corners=False)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((2, 3))
        prob = logits.sigmoid()
        dice = 1 - (2 * (prob * target).sum((2, 3)) + 1) / (prob.sum((2, 3)) + target.sum((2, 3)) + 1)
        hard, truth = logits > 0, target > 0
        iou = ((hard & truth).sum((2, 3)) / (hard | truth).sum((2, 3)).clamp(min=1)).float()  # B x 4
        loss = (bce + dice).mean() + torch.nn.functional.mse_loss(iou_pred, iou)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            mean_iou = ", ".join(f"{v:.2f}" for v in iou.mean(0).tolist())
            print(f"  step {step}: loss {loss.item():.3f}, IoU of masks 0-3: {mean_iou}")
    decoder.eval()
    for p in params.values():
        p.requires_grad_(False)
    weights = {n: params[n].detach().half() for n in trained}
    model.load_state_dict({**model.state_dict(), **{n: v.float() for n, v in weights.items()}}, strict=True)
    return weights


def scipy_connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stand-in for the CUDA kernel ``get_connected_componnets``: N x 1 x H x W uint8 -> (labels, areas), int32.

    8-connected components of the foreground; every foreground pixel gets its component's label (> 0) and
    area, the background 0 and 0.
    """
    labels = np.zeros(mask.shape, dtype=np.int32)
    areas = np.zeros(mask.shape, dtype=np.int32)
    for i, image in enumerate(mask[:, 0].numpy().astype(bool)):
        lab, n = ndimage.label(image, structure=np.ones((3, 3), dtype=bool))
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        sizes[0] = 0
        labels[i, 0], areas[i, 0] = lab, sizes[lab]
    return torch.from_numpy(labels), torch.from_numpy(areas)


def install_cpu_connected_components() -> None:
    """Make ``from sam2 import _C`` give the scipy stand-in (the extension is not built on this machine)."""
    import sam2

    fake = types.ModuleType("sam2._C")
    fake.get_connected_componnets = scipy_connected_components  # the kernel's name, typo included
    sys.modules["sam2._C"] = fake
    sam2._C = fake


class NearThresholdLog:
    """Wraps the reference's ``calculate_stability_score`` to remember, for every mask it sees (crop frame),
    the pixels within NEAR of the threshold, keyed by the crop's size and the thresholded mask's bytes."""

    def __init__(self) -> None:
        self.original = reference_amg.calculate_stability_score
        self.near: dict[tuple, np.ndarray] = {}

    def __call__(self, masks: torch.Tensor, mask_threshold: float, threshold_offset: float) -> torch.Tensor:
        binary = (masks > mask_threshold).numpy()
        near = ((masks - mask_threshold).abs() <= NEAR).numpy()
        for b, n in zip(binary, near):
            key = (b.shape, b.tobytes())
            self.near[key] = self.near.get(key, np.zeros_like(n)) | n
        return self.original(masks, mask_threshold, threshold_offset)

    def lookup(self, mask: np.ndarray, crop_box: list[int]) -> np.ndarray:
        """The near-threshold pixels (flat indices of the image) of a record's mask, found by its crop-frame mask."""
        x0, y0, x1, y1 = crop_box
        in_crop = mask[y0:y1, x0:x1]
        near_crop = self.near[(in_crop.shape, in_crop.tobytes())]
        near = np.zeros_like(mask)
        near[y0:y1, x0:x1] = near_crop
        return np.flatnonzero(near)


def rle_to_mask(rle: dict) -> np.ndarray:
    """The reference's uncompressed RLE (column-major runs, starting with zeros) -> H x W bool."""
    h, w = rle["size"]
    flat = np.zeros(h * w, dtype=bool)
    position, value = 0, False
    for count in rle["counts"]:
        flat[position:position + count] = value
        position += count
        value = not value
    return flat.reshape(w, h).T


def build_small_model(small: dict):
    weights = {k: v.float() for k, v in small["state_dict"].items()}
    model = build_sam2(small["base_config"], None, device="cpu", hydra_overrides_extra=list(small["overrides"]))
    model.load_state_dict(weights, strict=True)
    return model.eval()


def record_setting(model, image: np.ndarray, kwargs: dict, log: NearThresholdLog) -> dict:
    """The reference's records for one setting, in the fixture's compact form (see the module docstring)."""
    generator = reference_amg.SAM2AutomaticMaskGenerator(model, **{"points_per_side": POINTS_PER_SIDE, **kwargs})
    # The reference predictor assumes 1024 px input (its feature sizes are constants): set them for 256 px.
    generator.predictor._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]
    log.near.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped post-processing step (missing extension) must not pass unseen
        records = generator.generate(image)
    masks, near, rles = [], [], []
    for i, r in enumerate(records):
        seg = r["segmentation"]
        mask = rle_to_mask(seg) if isinstance(seg, dict) else np.asarray(seg, dtype=bool)
        x, y, w, h = (int(v) for v in r["crop_box"])
        masks.append(np.packbits(mask.ravel()))
        pixels = log.lookup(mask, [x, y, x + w, y + h])
        near.append(np.stack([np.full_like(pixels, i), pixels]))
        if isinstance(seg, dict):
            rles.append({"size": [int(v) for v in seg["size"]], "counts": [int(c) for c in seg["counts"]]})
    fields = ("area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box")
    mask_bits = np.stack(masks) if masks else np.zeros((0, image.shape[0] * image.shape[1] // 8), np.uint8)
    near_threshold = np.concatenate(near, axis=1) if near else np.zeros((2, 0), np.int64)
    out = {"kwargs": kwargs, "count": len(records),
           "mask_bits": torch.from_numpy(mask_bits), "near_threshold": torch.from_numpy(near_threshold),
           "segmentation_types": sorted({type(r["segmentation"]).__name__ for r in records})}
    out.update({f: [r[f] for r in records] for f in fields})
    if rles:
        out["rles"] = rles
    return out


def main() -> None:
    torch.set_num_threads(2)
    install_cpu_connected_components()
    small = torch.load(DATA / "sam2_parity_small.pt", weights_only=False)
    model = build_small_model(small)
    image = test_image(*IMAGE_HW, seed=31)
    print("training part of the decoder:")
    decoder_weights = train_decoder(model, image)
    log = NearThresholdLog()
    reference_amg.calculate_stability_score = log
    settings = {}
    for name, kwargs in SETTINGS.items():
        settings[name] = record_setting(model, image, kwargs, log)
        rec = settings[name]
        print(f"{name:30s} {rec['count']:3d} masks, areas {rec['area'][:8]}..., "
              f"{rec['near_threshold'].shape[1]} pixels within {NEAR} of the threshold")
    assert settings["defaults"]["count"] > 0, "the reference's default thresholds keep no mask"
    record = {
        "about": "reference sam2 1.1.0 SAM2AutomaticMaskGenerator.generate on the small model of "
                 "sam2_parity_small.pt (its base_config, overrides and state_dict) with decoder_weights loaded "
                 "over it (trained by train_decoder), points_per_side 8, on a 64 x 96 image",
        "torch": torch.__version__, "points_per_side": POINTS_PER_SIDE, "near_threshold_atol": NEAR,
        "decoder_weights": decoder_weights, "image": torch.from_numpy(image), "settings": settings,
    }
    out = DATA / "sam2_amg_small.pt"
    torch.save(record, out)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
