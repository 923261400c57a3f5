"""Record the MobileSAM package's outputs for tests/test_mobile_sam.py (run with the reference, never in CI).

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch mobilesam-mirror timm
    /tmp/ref/bin/python tests/record/record_mobile_sam_parity.py

Builds ``mobile_sam.sam_model_registry["vit_t"]`` (TinyViT at its real sizes), gives it the portable random
weights of ``tests/random_weights.py`` (so the fixture holds no weights: the test makes the same ones), and
runs the package's own ``SamPredictor`` on a small image with several prompts. Writes

- ``tests/data/mobile_sam_vit_t_state_dict.txt``: every key and shape of the official model (the
  classifier head included), from which the test makes its random checkpoint;
- ``tests/data/mobile_sam_parity.pt``: the image, the prompts and the package's outputs (the 256 x 256
  low-res logits every 4th row and column, to keep the file small).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

import mobile_sam  # noqa: E402
from mobile_sam import SamPredictor, sam_model_registry  # noqa: E402
from random_weights import random_state_dict, uniform, write_shapes  # noqa: E402


def test_image(h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth picture with a few regions (not noise: masks should follow something): H x W x 3 uint8."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), dtype=np.float64)
    img[..., 0] = 120 + 100 * ((x - 40) ** 2 + (y - 50) ** 2 < 25**2)
    img[..., 1] = 60 + 150 * ((x > 70) & (y > 20) & (y < 80))
    img[..., 2] = 90 + 60 * np.sin(x / 9.0)
    img += 10 * uniform(7, h * w * 3).reshape(h, w, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


CASES = {
    "point": dict(point_coords=np.array([[40.0, 50.0]]), point_labels=np.array([1]), multimask_output=True),
    "point_single": dict(point_coords=np.array([[40.0, 50.0]]), point_labels=np.array([1]), multimask_output=False),
    "points_pos_neg": dict(point_coords=np.array([[90.0, 40.0], [30.0, 20.0], [100.0, 70.0]]),
                           point_labels=np.array([1, 0, 1]), multimask_output=True),
    "box": dict(box=np.array([60.0, 15.0, 125.0, 85.0]), multimask_output=False),
    "box_and_negative_point": dict(box=np.array([10.0, 20.0, 80.0, 90.0]), point_coords=np.array([[75.0, 50.0]]),
                                   point_labels=np.array([0]), multimask_output=True),
}


def main() -> None:
    torch.set_num_threads(2)
    model = sam_model_registry["vit_t"]()
    shapes_file = TESTS / "data" / "mobile_sam_vit_t_state_dict.txt"
    write_shapes(shapes_file, model.state_dict())
    state_dict = random_state_dict({k: v.shape for k, v in model.state_dict().items()})
    model.load_state_dict(state_dict, strict=True)
    # As the MobileSAM README does after loading: eval() again, which makes each attention's cached bias
    # table from the loaded weights (the builder's own eval() ran before the weights were loaded).
    model.eval()

    image = test_image()
    predictor = SamPredictor(model)
    predictor.set_image(image)
    embedding = predictor.get_image_embedding()  # 1 x 256 x 64 x 64

    cases = {}
    for name, prompt in CASES.items():
        masks, iou, low_res = predictor.predict(**prompt)
        logits, _, _ = predictor.predict(**prompt, return_logits=True)
        cases[name] = {"inputs": prompt, "masks": torch.from_numpy(masks), "iou_predictions": torch.from_numpy(iou),
                       "low_res_every4": torch.from_numpy(low_res[..., ::4, ::4].copy()),
                       "logits": torch.from_numpy(logits)}
        if name == "point":
            first_low_res = low_res
    # Refinement: the best low-res mask of the first case (256 x 256 logits, kept whole in the inputs) as the
    # mask prompt, with a second click.
    first = cases["point"]
    best = int(first["iou_predictions"].argmax())
    refine = dict(point_coords=np.array([[40.0, 50.0], [60.0, 60.0]]), point_labels=np.array([1, 1]),
                  mask_input=first_low_res[best:best + 1], multimask_output=False)
    masks, iou, low_res = predictor.predict(**refine)
    logits, _, _ = predictor.predict(**refine, return_logits=True)
    cases["refine_with_mask_input"] = {"inputs": refine, "masks": torch.from_numpy(masks),
                                       "iou_predictions": torch.from_numpy(iou),
                                       "low_res_every4": torch.from_numpy(low_res[..., ::4, ::4].copy()),
                                       "logits": torch.from_numpy(logits)}

    for name, case in cases.items():
        lo = case["logits"]
        print(f"{name:24s} iou {case['iou_predictions'].numpy().round(3)} logits in [{lo.min():.2f}, {lo.max():.2f}], "
              f"{float((lo > 0).float().mean()):.2f} positive")
    record = {
        "about": "mobile_sam (mobilesam-mirror) SamPredictor outputs for vit_t with tests/random_weights.py weights",
        "torch": torch.__version__,
        "mobile_sam": getattr(mobile_sam, "__version__", "mobilesam-mirror"),
        "image": torch.from_numpy(image),
        "input_size": tuple(predictor.input_size),
        "original_size": tuple(predictor.original_size),
        # the embedding is 4 MB: its first 16 channels are kept, and every channel's mean and std
        "embedding_head": embedding[0, :16].clone(),
        "embedding_mean": embedding[0].mean(dim=(1, 2)).clone(),
        "embedding_std": embedding[0].std(dim=(1, 2)).clone(),
        "cases": cases,
    }
    out = TESTS / "data" / "mobile_sam_parity.pt"
    torch.save(record, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {shapes_file}")


if __name__ == "__main__":
    main()
