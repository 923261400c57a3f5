"""How well text prompts segment, beside points and boxes, and which words fail.

    python -m samwidgets evaluate-text --out runs/text_eval.json

On held-out scenes every mask is asked for by phrases of several kinds (the
full phrase, "colour name", the name alone, ...). A phrase counts only where
it is unambiguous: no other mask of the same image has the facts it says
(six identical petals are not "the purple petal"). The model's most
confident of 3 masks is scored by IoU (and the best of 3, the oracle); the
same masks are also prompted with one point (the interior centre) and with
their box. As in training (and the paper), only masks larger than 100^2
pixels of a 1024 px image are asked for (625 pixels at 256). A control
asks whether the phrase matters at all: each object is also scored against
what a neighbour's phrase (another object of the same image) selects. The
failure analysis groups the full-phrase IoUs by word and by level of the
hierarchy.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ..data.masks import mask_iou
from ..evaluation.clicks import interior_centre
from ..inference.predictor import SamPredictor
from ..inference.text_encoder import ClipLike
from ..modeling import Sam
from .crops import mask_box
from .phrases import FACETS, phrase
from .scene_bank import SceneBank
from .train_sam import paper_min_area

#: Which facts (pattern, colour, shape, name) each kind of query says.
QUERY_KINDS = {
    "full phrase": (True, True, True, True),
    "colour + name": (False, True, False, True),
    "pattern + colour": (True, True, False, False),
    "name": (False, False, False, True),
    "colour": (False, True, False, False),
}
LEVELS = ("whole", "part", "subpart")


def unambiguous(bank: SceneBank, keep: tuple) -> np.ndarray:
    """M bool: the phrase saying facts ``keep`` of mask i fits no other mask of its image (and says something)."""
    said = [tuple(w if k else None for w, k in zip(words, keep)) for words in bank.words]
    counts: dict = defaultdict(int)
    for img, key in zip(bank.image_of_mask, said):
        counts[(int(img), key)] += 1
    return np.array([counts[(int(img), key)] == 1 and any(x for x in key if x)
                     for img, key in zip(bank.image_of_mask, said)])


@torch.no_grad()
def evaluate_text_prompts(model: Sam, clip: ClipLike, bank: SceneBank, *, kinds: dict | None = None,
                          base_model: Sam | None = None, min_area: int | None = None) -> dict:
    """mIoU per query kind (most confident of 3, and oracle) with per-word failures; beside them one point
    and the box on the masks the full phrase names, for ``model`` and (if given) the ``base_model`` it was
    fine-tuned from. Only masks of at least ``min_area`` pixels are asked for (default: the paper's 100^2
    of a 1024 px image, scaled, as in training)."""
    kinds = kinds or QUERY_KINDS
    if min_area is None:
        min_area = paper_min_area(model.image_encoder.img_size)
    predictor = SamPredictor(model, cache_size=1, text_encoder=clip)
    big_enough = bank.areas >= min_area
    eligible = {name: unambiguous(bank, keep) & big_enough for name, keep in kinds.items()}
    scores: dict = {name: [] for name in kinds}
    oracle: dict = {name: [] for name in kinds}
    full_rows = []
    control: list[tuple[float, float]] = []  # (own phrase IoU, neighbour's phrase IoU) of one object
    text_cache: dict = {}
    for img in range(len(bank.images)):
        members = np.flatnonzero(bank.image_of_mask == img)
        if members.size == 0:
            continue
        predictor.set_image(bank.images[img])
        masks = bank.masks(members)
        for name, keep in kinds.items():
            chosen = [k for k, m in enumerate(members) if eligible[name][m]]
            if not chosen:
                continue
            texts = [phrase(bank.words[members[k]], keep) for k in chosen]
            missing = sorted(set(texts) - set(text_cache))
            if missing:
                for t, e in zip(missing, clip.encode_text(missing).float()):
                    text_cache[t] = e
            emb = torch.stack([text_cache[t] for t in texts]).to(model.device)  # B x E
            pred, iou_pred, _ = predictor.predict_torch(None, None, embeddings=emb)  # B x 3 x H x W, B x 3
            pred, iou_pred = pred.cpu().numpy(), iou_pred.cpu().numpy()
            for row, k in enumerate(chosen):
                ious = [mask_iou(pred[row, j], masks[k]) for j in range(pred.shape[1])]
                scores[name].append(ious[int(np.argmax(iou_pred[row]))])
                oracle[name].append(max(ious))
                if name == "full phrase":
                    full_rows.append((members[k], scores[name][-1]))
            if name == "full phrase" and len(chosen) > 1:
                # the control: does the phrase matter? each object against what a neighbour's phrase selects
                neighbours = torch.stack([text_cache[texts[(r + 1) % len(chosen)]] for r in range(len(chosen))])
                pred_n, iou_n, _ = predictor.predict_torch(None, None, embeddings=neighbours.to(model.device))
                pred_n, iou_n = pred_n.cpu().numpy(), iou_n.cpu().numpy()
                own = scores[name][-len(chosen):]
                for row, k in enumerate(chosen):
                    control.append((own[row], mask_iou(pred_n[row, int(np.argmax(iou_n[row]))], masks[k])))
    result: dict = {"scenes": int(len(bank.images)), "min_area": int(min_area), "queries": {}}
    for name in kinds:
        v = np.array(scores[name])
        result["queries"][name] = {"count": int(v.size),
                                   "miou": float(v.mean()) if v.size else float("nan"),
                                   "oracle_miou": float(np.mean(oracle[name])) if v.size else float("nan"),
                                   "hit_rate": float((v > 0.5).mean()) if v.size else float("nan")}
    pairs = np.array(control).reshape(-1, 2)
    result["neighbour_control"] = {
        "count": int(len(pairs)),
        "own_phrase_miou": float(pairs[:, 0].mean()) if len(pairs) else float("nan"),
        "neighbour_phrase_miou": float(pairs[:, 1].mean()) if len(pairs) else float("nan"),
        "own_phrase_better": float((pairs[:, 0] > pairs[:, 1]).mean()) if len(pairs) else float("nan"),
        "neighbour_phrase_better": float((pairs[:, 0] < pairs[:, 1]).mean()) if len(pairs) else float("nan"),
    }
    named = np.array([m for m, _ in full_rows], dtype=np.int64)
    result["same_masks"] = point_and_box_miou(model, bank, named)
    if base_model is not None:
        result["base_same_masks"] = point_and_box_miou(base_model, bank, named)
    result["by_word"] = failure_analysis(bank, full_rows)
    return result


@torch.no_grad()
def point_and_box_miou(model: Sam, bank: SceneBank, indices: np.ndarray) -> dict:
    """mIoU of masks ``indices`` from one point (the interior centre; most confident of 3) and from the box."""
    predictor = SamPredictor(model, cache_size=1)
    point_scores, box_scores = [], []
    for img in np.unique(bank.image_of_mask[indices]):
        members = indices[bank.image_of_mask[indices] == img]
        predictor.set_image(bank.images[img])
        for target in bank.masks(members):
            x, y = interior_centre(target)
            p, q, _ = predictor.predict(np.array([[x, y]]), np.array([1]))
            point_scores.append(mask_iou(p[int(np.argmax(q))], target))
            b, _, _ = predictor.predict(box=mask_box(target), multimask_output=False)
            box_scores.append(mask_iou(b[0], target))
    return {"count": len(point_scores),
            "one_point_miou": float(np.mean(point_scores)) if point_scores else float("nan"),
            "box_miou": float(np.mean(box_scores)) if box_scores else float("nan")}


def failure_analysis(bank: SceneBank, rows: list) -> dict:
    """Full-phrase IoUs grouped by each word of each fact, and by level: {facet: {word: [count, mIoU]}}."""
    groups: dict = {f: defaultdict(list) for f in FACETS + ("level",)}
    for mask, score in rows:
        for f, w in zip(FACETS, bank.words[mask]):
            if w:
                groups[f][w].append(score)
        groups["level"][LEVELS[int(bank.levels[mask])]].append(score)
    return {f: {w: [len(v), float(np.mean(v))] for w, v in sorted(g.items(), key=lambda kv: -np.mean(kv[1]))}
            for f, g in groups.items()}


def markdown(result: dict, min_count: int = 10) -> str:
    """Tables of :func:`evaluate_text_prompts`' result."""
    lines = [f"Masks of at least {result['min_area']} pixels, named unambiguously in their image, on "
             f"{result['scenes']} held-out scenes.", "",
             "| query | masks | mIoU (most confident) | mIoU (best of 3) | IoU > 0.5 |", "|---|---|---|---|---|"]
    for name, q in result["queries"].items():
        lines.append(f"| {name} | {q['count']} | {q['miou']:.3f} | {q['oracle_miou']:.3f} | {q['hit_rate']:.0%} |")
    for key, who in (("same_masks", ""), ("base_same_masks", ", the base model before text training")):
        if key in result:
            s = result[key]
            lines.append(f"| one point (the full phrase's masks{who}) | {s['count']} | {s['one_point_miou']:.3f} | | |")
            lines.append(f"| box (the full phrase's masks{who}) | {s['count']} | {s['box_miou']:.3f} | | |")
    if result.get("neighbour_control", {}).get("count"):
        c = result["neighbour_control"]
        lines += ["", f"Does the phrase matter? On {c['count']} objects with a neighbour in their image, "
                      "the object's own "
                      f"full phrase gives mIoU {c['own_phrase_miou']:.3f}, a neighbour's phrase "
                      f"{c['neighbour_phrase_miou']:.3f} (scored against the same object); the own phrase is better "
                      f"for {c['own_phrase_better']:.0%} of them, "
                      f"the neighbour's for {c['neighbour_phrase_better']:.0%}."]
    for facet, words in result["by_word"].items():
        shown = [(w, c, m) for w, (c, m) in words.items() if c >= min_count]
        if shown:
            lines.append("")
            lines.append(f"full phrase mIoU by {facet} (>= {min_count} masks): " +
                         ", ".join(f"{w} {m:.2f} ({c})" for w, c, m in shown))
    return "\n".join(lines)
