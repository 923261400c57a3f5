"""Evaluate a model on held-out procedural scenes (``samwidgets evaluate``).

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
never uses. :func:`evaluate` returns an :class:`EvalResult` (its markdown table);
:func:`plot` draws mIoU against the number of points, confident vs oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import SceneGenerator
from ..data.masks import mask_iou, tight_box
from ..data.seeds import EVALUATE_SEED_START
from ..inference.predictor import SamPredictor
from ..io.atomic import atomic_write
from ..modeling import Sam
from .clicks import POINT_COUNTS, click_protocol, interior_centre


@dataclass
class EvalResult:
    scenes: int
    masks: int
    miou_confident: dict[int, float] = field(default_factory=dict)
    miou_oracle: dict[int, float] = field(default_factory=dict)
    miou_box: float = 0.0
    ambiguity_score: float = 0.0
    ambiguity_points: int = 0
    # the first scene's rows, one per mask: "confident" and "oracle" (IoU after each point), "box_iou"; a notebook
    # recomputes them live to show that a recorded result is what the model does
    spot_check: dict[str, list] = field(default_factory=dict)

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
    first_scene_masks = 0  # masks of scene 0: the spot-check rows
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
            box_ious.append(mask_iou(box_mask[0], target))
        for j in np.flatnonzero(scene.levels == 2):
            chain = scene.chain(int(j))
            if len(chain) != 3:
                continue
            x, y = interior_centre(scene.masks[j])
            masks, _, _ = predictor.predict(np.array([[x, y]]), np.array([1]), multimask_output=True)
            ambiguity.append(np.mean([max(mask_iou(m, scene.masks[k]) for m in masks) for k in chain]))
        if s == 0:
            first_scene_masks = len(conf_curves)
    conf_arr, orac_arr = np.array(conf_curves), np.array(oracle_curves)
    return EvalResult(
        scenes=num_scenes,
        masks=len(conf_curves),
        miou_confident={n: float(conf_arr[:, n - 1].mean()) for n in POINT_COUNTS},
        miou_oracle={n: float(orac_arr[:, n - 1].mean()) for n in POINT_COUNTS},
        miou_box=float(np.mean(box_ious)),
        ambiguity_score=float(np.mean(ambiguity)) if ambiguity else float("nan"),
        ambiguity_points=len(ambiguity),
        spot_check={"confident": [[float(v) for v in c] for c in conf_curves[:first_scene_masks]],
                    "oracle": [[float(v) for v in c] for c in oracle_curves[:first_scene_masks]],
                    "box_iou": [float(v) for v in box_ious[:first_scene_masks]]},
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
