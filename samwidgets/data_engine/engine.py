"""The data engine in miniature: the three stages, with the model retrained after each one.

The paper (section 4) grew SA-1B and SAM together: annotators used SAM to
label masks, SAM was retrained on them, the better SAM pre-filled masks, and
in the end SAM labelled 11M images alone. Here the same loop runs on
*cluttered* procedural scenes (more, smaller objects than the scenes the
bundled model was trained on, so there is something new to learn):

    start model -> assisted-manual on new scenes -> retrain
                -> semi-automatic on new scenes  -> retrain
                -> fully automatic on new scenes -> retrain

Each retraining fine-tunes the current model (prompt encoder and decoder; the
image encoder stays frozen, as a small-data fine-tune should) on every mask
collected so far, with the paper's interactive recipe. After each stage the
report gives masks per image, clicks, mask quality and the held-out mIoU.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm

from ..data import SceneGenerator
from ..data.scenes import Scene
from ..data.seeds import ENGINE_EVAL_SEED_START, POOL_SEED_START, POOL_STAGE_STRIDE
from ..evaluation.procedural import evaluate
from ..io.atomic import atomic_torch_save, atomic_write_bytes
from ..io.sa1b import write_sa1b
from ..modeling import Sam
from ..training.datasets import AnnotatedSource
from ..training.loop import freeze_image_encoder, make_optimizer, training_step
from ..training.schedule import lr_factor
from .annotator import AnnotatorConfig
from .stages import StageResult, assisted_manual, fully_automatic, semi_automatic

#: The engine's scenes: more and smaller objects than the training distribution of the bundled model.
ENGINE_SCENES = {"min_objects": 3, "max_objects": 7, "min_object_size": 0.12, "max_object_size": 0.45}
#: The report of the full run with the default settings, shipped with the package (the notebook plots it).
RECORDED_REPORT = Path(__file__).resolve().parents[1] / "weights" / "data_engine_report.json"


@dataclass
class EngineConfig:
    """How big the miniature is. The defaults take about 25 minutes on two CPU cores."""

    images_per_stage: tuple[int, int, int] = (12, 12, 24)
    steps_per_stage: int = 50
    images_per_step: int = 4
    masks_per_image: int = 4
    rounds: int = 11
    lr: float = 3e-4
    eval_scenes: int = 20
    eval_masks_per_scene: int = 8
    annotator: AnnotatorConfig = field(default_factory=AnnotatorConfig)
    seed: int = 0


@dataclass
class StageReport:
    """One row of the data-engine table."""

    stage: str
    data: dict[str, float]  # StageResult.summary() of this stage's new images
    total_masks: int  # masks collected so far, over all stages
    train_loss: list[float] = field(default_factory=list)  # per retraining step
    heldout: dict[str, float] = field(default_factory=dict)  # mIoU after retraining on everything so far


def engine_scenes(image_size: int) -> SceneGenerator:
    return SceneGenerator(image_size=image_size, **ENGINE_SCENES)


def pool_scenes(stage: int, count: int, image_size: int) -> list[Scene]:
    """The new, unlabelled images of stage ``stage`` (0, 1, 2); disjoint between stages."""
    generator = engine_scenes(image_size)
    start = POOL_SEED_START + stage * POOL_STAGE_STRIDE
    return [generator(start + i) for i in range(count)]


def heldout_miou(model: Sam, config: EngineConfig) -> dict[str, float]:
    """1- and 3-point mIoU (most confident mask, and best of 3) and box mIoU on held-out engine scenes."""
    result = evaluate(model.eval(), num_scenes=config.eval_scenes, seed_start=ENGINE_EVAL_SEED_START,
                      max_masks_per_scene=config.eval_masks_per_scene, scenes=engine_scenes(model.config.image_size))
    return {"1pt": result.miou_confident[1], "1pt_oracle": result.miou_oracle[1], "3pt": result.miou_confident[3],
            "box": result.miou_box, "masks": result.masks}


def retrain(model: Sam, stages: list[StageResult], config: EngineConfig, stage_index: int,
            progress: bool = False) -> list[float]:
    """Fine-tune ``model`` in place on every mask of ``stages``; returns the loss of each step."""
    images = [im.image for st in stages for im in st.images]
    masks = [im.masks for st in stages for im in st.images]
    source = AnnotatedSource(images, masks, model.config.image_size, seed=config.seed * 100 + stage_index)
    model.train()
    freeze_image_encoder(model)
    optimizer, params = make_optimizer(model, config.lr)
    warmup = max(1, config.steps_per_stage // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, config.steps_per_stage))
    generator = torch.Generator().manual_seed(config.seed * 100 + stage_index)
    losses = []
    for step in tqdm(range(config.steps_per_stage), disable=not progress, desc=f"retrain {stage_index + 1}",
                     leave=False):
        batch = source.batch(step, config.images_per_step, config.masks_per_image)
        result = training_step(model, batch, optimizer, params, generator, num_rounds=config.rounds,
                               scheduler=scheduler)
        losses.append(result.loss)
    model.eval()
    return losses


def run_stage(index: int, model: Sam, scenes: list[Scene], config: EngineConfig) -> StageResult:
    """Stage ``index`` (0 assisted-manual, 1 semi-automatic, 2 fully automatic) on ``scenes``."""
    with torch.no_grad():  # not inference_mode: the predictor's caches track tensor versions
        if index == 0:
            return assisted_manual(model, scenes, config.annotator)
        if index == 1:
            return semi_automatic(model, scenes, config.annotator)
        return fully_automatic(model, scenes)


def export_stage(stage: StageResult, index: int, out_dir: Path) -> Path:
    """Write a stage's images (PNG) and masks (one SA-1B JSON per image) to ``out_dir/stage<k>_<name>/``."""
    folder = out_dir / f"stage{index + 1}_{stage.name}"
    folder.mkdir(parents=True, exist_ok=True)
    for im in stage.images:
        name = f"scene_{im.seed}"
        atomic_write_bytes(folder / f"{name}.png", _png_bytes(Image.fromarray(im.image)))
        h, w = im.image.shape[:2]
        write_sa1b(folder / f"{name}.json", im.records, image_id=im.seed, file_name=f"{name}.png", width=w, height=h)
    return folder


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def run_engine(model: Sam, config: EngineConfig | None = None, out_dir: str | Path | None = None,
               progress: bool = False) -> list[StageReport]:
    """Run the three stages with retraining; returns one report row per stage (plus the start row).

    ``model`` is not modified: the engine works on a copy. With ``out_dir``
    each stage's SA-1B export, the retrained weights (``model_stage<k>.pt``)
    and ``report.json`` / ``report.md`` are written there, atomically.
    """
    config = config or EngineConfig()
    model = copy.deepcopy(model).eval()
    out = Path(out_dir) if out_dir is not None else None
    rows = [StageReport(stage="start", data={}, total_masks=0, heldout=heldout_miou(model, config))]
    stages: list[StageResult] = []
    for index in range(3):
        scenes = pool_scenes(index, config.images_per_stage[index], model.config.image_size)
        stage = run_stage(index, model, scenes, config)
        stages.append(stage)
        losses = retrain(model, stages, config, index, progress)
        total = sum(len(im.records) for st in stages for im in st.images)
        rows.append(StageReport(stage=stage.name, data=stage.summary(), total_masks=total, train_loss=losses,
                                heldout=heldout_miou(model, config)))
        if out is not None:
            export_stage(stage, index, out)
            atomic_torch_save(model.state_dict(), out / f"model_stage{index + 1}.pt")
            write_report(rows, config, out, image_size=model.config.image_size)
        if progress:
            print(report_markdown(rows), flush=True)
    return rows


def write_report(rows: list[StageReport], config: EngineConfig, out_dir: Path, image_size: int | None = None) -> None:
    """``report.json`` (the config, the input size the engine ran at, the rows) and ``report.md`` (the table)."""
    payload = {"config": asdict(config), "image_size": image_size, "rows": [asdict(r) for r in rows]}
    atomic_write_bytes(out_dir / "report.json", json.dumps(payload, indent=1).encode())
    atomic_write_bytes(out_dir / "report.md", report_markdown(rows).encode())


def load_report(path: str | Path = RECORDED_REPORT) -> dict[str, Any]:
    """A ``report.json`` written by :func:`run_engine` (default: the recorded full run): config and rows."""
    return json.loads(Path(path).read_text())


def report_markdown(rows: list[StageReport] | list[dict[str, Any]]) -> str:
    """The data-engine table: data per stage, and held-out mIoU of the model retrained on it."""
    rows = [asdict(r) if isinstance(r, StageReport) else r for r in rows]
    head = ("| stage | images | masks/image | manual | auto | clicks/manual mask | brushed | mask quality "
            "| masks so far | 1 pt mIoU | 1 pt oracle | 3 pt mIoU | box mIoU |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        d, h = r["data"], r["heldout"]
        if d:
            data = (f"{d['images']} | {d['masks_per_image']:.1f} | {d['manual_masks_per_image']:.1f} | "
                    f"{d['auto_masks_per_image']:.1f} | {_fmt(d['clicks_per_manual_mask'])} | "
                    f"{_fmt(d['share_brushed'], '.0%')} | {d['mean_mask_quality']:.3f}")
        else:
            data = " | ".join(["-"] * 7)
        lines.append(f"| {r['stage']} | {data} | {r['total_masks']} | {h['1pt']:.3f} | {h['1pt_oracle']:.3f} | "
                     f"{h['3pt']:.3f} | {h['box']:.3f} |")
    return "\n".join(lines)


def _fmt(value: float, spec: str = ".1f") -> str:
    return "-" if value != value else format(value, spec)  # NaN (no manual masks) as a dash
