"""Evaluate a model on held-out procedural scenes: ``python -m samwidgets.evaluate``.

The paper's single-point valid-mask protocol (section 7.1, appendix D.1):
the first point at the mask's "centre" (the maximum of the interior
distance transform), each further point at the point farthest from the
boundary of the error region (positive where the model missed the object,
negative where it spilled over), the previous low-res logits fed back as
the mask prompt. mIoU after 1, 2, 3, 5 and 9 points, for the most
confident mask and for the oracle (the best of the outputs); mIoU from the
ground-truth box; and an ambiguity score: for a point on a subpart, the mean
over its three levels (subpart, part, whole) of the best IoU any of the 3
outputs reaches with that level's mask.

Scenes come from seeds at and above ``HELD_OUT_SEED_START``, which training
never uses. Prints a markdown table and writes ``eval.json`` and
``eval.png`` (mIoU vs number of points, confident vs oracle) to ``--out``.

With ``--bsds ROOT`` it evaluates on real photos instead (BSDS500's human
segments, baselines, NoC@85/90 on the GrabCut masks, the IoU head's
calibration): see :mod:`samwidgets.evaluate_photos`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from .atomic import atomic_write, atomic_write_bytes
from .data import SceneGenerator
from .data.masks import mask_iou as iou
from .data.masks import tight_box
from .modeling import Sam
from .predictor import SamPredictor
from .data.seeds import EVALUATE_SEED_START, HELD_OUT_SEED_START

POINT_COUNTS = (1, 2, 3, 5, 9)


def interior_centre(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel farthest from the mask's boundary (the image border counts as boundary)."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


def next_click(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, int] | None:
    """The next simulated click: farthest from the error region's boundary, labelled by error type.

    Returns (x, y, label) or None when the prediction is perfect.
    """
    false_neg, false_pos = target & ~pred, pred & ~target
    if not (false_neg.any() or false_pos.any()):
        return None
    dist_fn = ndimage.distance_transform_edt(np.pad(false_neg, 1))[1:-1, 1:-1]
    dist_fp = ndimage.distance_transform_edt(np.pad(false_pos, 1))[1:-1, 1:-1]
    positive = dist_fn.max() >= dist_fp.max()
    dist = dist_fn if positive else dist_fp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y), int(positive)


@dataclass
class EvalResult:
    scenes: int
    masks: int
    miou_confident: dict[int, float] = field(default_factory=dict)
    miou_oracle: dict[int, float] = field(default_factory=dict)
    miou_box: float = 0.0
    ambiguity_score: float = 0.0
    ambiguity_points: int = 0

    def markdown(self) -> str:
        head = "| | " + " | ".join(f"{n} pt" for n in POINT_COUNTS) + " | box | ambiguity |"
        sep = "|---" * (len(POINT_COUNTS) + 3) + "|"
        conf = "| confident | " + " | ".join(f"{self.miou_confident[n]:.3f}" for n in POINT_COUNTS)
        orac = "| oracle | " + " | ".join(f"{self.miou_oracle[n]:.3f}" for n in POINT_COUNTS)
        return "\n".join([
            head, sep,
            conf + f" | {self.miou_box:.3f} | {self.ambiguity_score:.3f} |",
            orac + " | | |",
            "",
            f"{self.masks} masks on {self.scenes} held-out scenes; ambiguity over {self.ambiguity_points} "
            "points on subparts.",
        ])


def click_protocol(predictor: SamPredictor, target: np.ndarray, max_points: int,
                   first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[list[float], list[float]]:
    """IoU after each click (confident, oracle) for one mask.

    first: the predictor's (masks, scores, low_res) for the first click alone (a positive point at
    ``interior_centre(target)``, ``multimask_output=True``) when the caller already has it (the
    BSDS evaluation scores those outputs too); computed here when None.
    """
    x, y = interior_centre(target)
    coords, labels = [[x, y]], [1]
    confident, oracle = [], []
    if first is None:
        first = predictor.predict(np.array(coords), np.array(labels), multimask_output=True)
    masks, scores, low_res = first  # 3 x H x W bool, 3, 3 x S x S
    ious = [iou(m, target) for m in masks]
    best = int(np.argmax(scores))
    confident.append(ious[best])
    oracle.append(max(ious))
    chosen, prompt = masks[best], low_res[best][None]
    for _ in range(1, max_points):
        click = next_click(chosen, target)
        if click is not None:
            coords.append([click[0], click[1]])
            labels.append(click[2])
        single, _, single_low = predictor.predict(np.array(coords), np.array(labels), mask_input=prompt,
                                                  multimask_output=False)
        multi, _, _ = predictor.predict(np.array(coords), np.array(labels), mask_input=prompt,
                                        multimask_output=True)
        single_iou = iou(single[0], target)
        confident.append(single_iou)
        oracle.append(max([single_iou] + [iou(m, target) for m in multi]))
        chosen, prompt = single[0], single_low
    return confident, oracle


def evaluate(model: Sam, num_scenes: int = 50, seed_start: int = EVALUATE_SEED_START,
             max_masks_per_scene: int | None = 8, progress: bool = False,
             scenes: SceneGenerator | None = None) -> EvalResult:
    """Run the whole protocol on ``num_scenes`` held-out scenes at the model's image size.

    scenes: the scene generator (default: the training distribution at the model's size); the data
    engine passes its own, more cluttered one.
    """
    from tqdm import tqdm

    generator = scenes or SceneGenerator(image_size=model.config.image_size)
    predictor = SamPredictor(model, cache_size=1)
    max_points = max(POINT_COUNTS)
    conf_curves, oracle_curves, box_ious, ambiguity = [], [], [], []
    for s in tqdm(range(num_scenes), disable=not progress, desc="evaluate"):
        scene = generator(seed_start + s)
        predictor.set_image(scene.image)
        order = np.random.default_rng(seed_start + s).permutation(len(scene.masks))
        chosen = order[:max_masks_per_scene] if max_masks_per_scene else order
        for j in chosen:
            target = scene.masks[j]
            conf, orac = click_protocol(predictor, target, max_points)
            conf_curves.append(conf)
            oracle_curves.append(orac)
            box = tight_box(target)
            box_mask, _, _ = predictor.predict(box=box, multimask_output=False)
            box_ious.append(iou(box_mask[0], target))
        for j in np.flatnonzero(scene.levels == 2):
            chain = scene.chain(int(j))
            if len(chain) != 3:
                continue
            x, y = interior_centre(scene.masks[j])
            masks, _, _ = predictor.predict(np.array([[x, y]]), np.array([1]), multimask_output=True)
            ambiguity.append(np.mean([max(iou(m, scene.masks[k]) for m in masks) for k in chain]))
    conf_arr, orac_arr = np.array(conf_curves), np.array(oracle_curves)
    return EvalResult(
        scenes=num_scenes,
        masks=len(conf_curves),
        miou_confident={n: float(conf_arr[:, n - 1].mean()) for n in POINT_COUNTS},
        miou_oracle={n: float(orac_arr[:, n - 1].mean()) for n in POINT_COUNTS},
        miou_box=float(np.mean(box_ious)),
        ambiguity_score=float(np.mean(ambiguity)) if ambiguity else float("nan"),
        ambiguity_points=len(ambiguity),
    )


def plot(result: EvalResult, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    xs = list(POINT_COUNTS)
    ax.plot(xs, [result.miou_oracle[n] for n in xs], "o-", label="oracle (best output)")
    ax.plot(xs, [result.miou_confident[n] for n in xs], "s-", label="most confident")
    ax.axhline(result.miou_box, color="gray", ls="--", label=f"box prompt ({result.miou_box:.3f})")
    ax.set_xlabel("number of points")
    ax.set_ylabel("mIoU")
    ax.set_xticks(xs)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "held-out procedural scenes")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from .build import build_sam
    from .modeling import CONFIGS, SamConfig

    p = argparse.ArgumentParser(prog="python -m samwidgets.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None,
                   help="a state dict (e.g. runs/x/weights.pt); default: the bundled default model")
    p.add_argument("--config", default="default_tiny", help="configuration name, or a config.json path")
    p.add_argument("--scenes", type=int, default=50)
    p.add_argument("--masks-per-scene", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("eval_results"))
    photos = p.add_argument_group("real photos (BSDS500) instead of procedural scenes")
    photos.add_argument("--bsds", type=Path, default=None, metavar="ROOT",
                        help="evaluate on BSDS500 photos: the folder holding images/ and groundTruth/ "
                             "(BSDS500/data); writes bsds_<split>.json/.md/_clicks.png/_calibration.png")
    photos.add_argument("--split", default="val", help="the BSDS500 split to evaluate (default: val)")
    photos.add_argument("--grabcut", type=Path, default=None, metavar="DIR",
                        help="GrabCut ground-truth PNGs for NoC@85/90 (default: ROOT/../grabcut/ground-truth "
                             "when it exists, else NoC is skipped)")
    photos.add_argument("--max-photos", type=int, default=None, metavar="N",
                        help="quick runs: the first N photos of the split (and at most N GrabCut photos)")
    photos.add_argument("--no-grabcut-baseline", action="store_true",
                        help="skip the slow OpenCV grabCut baseline")
    args = p.parse_args(argv)

    if args.weights is None:
        from .default_model import DEFAULT_MODEL_NAME, DEFAULT_WEIGHTS, load_default

        model = load_default()
        model_name = f"bundled {DEFAULT_MODEL_NAME} ({DEFAULT_WEIGHTS.name})"
    else:
        config_path = Path(args.config)
        config = (SamConfig.from_dict(json.loads(config_path.read_text())) if config_path.suffix == ".json"
                  else CONFIGS[args.config])
        model = build_sam(config, args.weights)
        model_name = f"{args.weights} (config {args.config})"
    torch.manual_seed(0)
    if args.bsds is not None:
        from .evaluate_photos import run_bsds

        return run_bsds(model, args.bsds, args.out, split=args.split, grabcut_dir=args.grabcut,
                        max_photos=args.max_photos, grabcut_baseline=not args.no_grabcut_baseline,
                        model_name=model_name)
    result = evaluate(model, args.scenes, max_masks_per_scene=args.masks_per_scene, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "eval.json", json.dumps(asdict(result), indent=2).encode())
    plot(result, args.out / "eval.png")
    print(result.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
