"""Export SAM's prompt encoder and mask decoder to ONNX: ``samwidgets export-onnx``.

    samwidgets export-onnx --out decoder.onnx                                   # the bundled model
    samwidgets export-onnx --model vit_b --weights sam_vit_b_01ec64.pth --out sam_vit_b_decoder.onnx
    samwidgets export-onnx --model sam2.1_hiera_t --weights sam2.1_hiera_tiny.pt --out sam2_decoder.onnx

The graph has the reference's inputs and outputs (``image_embeddings``, ``point_coords``,
``point_labels``, ``mask_input``, ``has_mask_input``, ``orig_im_size`` -> ``masks``,
``iou_predictions``, ``low_res_masks``; see :mod:`samwidgets.inference.onnx`), so the reference's
web demo and other applications built on its export run it unchanged. Feed it the embedding of
``SamPredictor.get_image_embedding()`` and point coordinates in the resized frame
(``predictor.transform.apply_coords``). Needs ``pip install onnx onnxruntime``.

SAM 2: ``--model`` a SAM 2 configuration (sam2.1_hiera_t, ..., sam2_hiera_l, or its path
configs/sam2.1/sam2.1_hiera_t.yaml) with ``--weights FILE``, or a SAM 2 checkpoint name
(sam2.1_hiera_tiny, downloaded). Its graph takes the image embedding and the two high-resolution
feature maps (``image_embed``, ``high_res_feats_0``, ``high_res_feats_1``; see
:mod:`samwidgets.sam2.onnx`); ``--return-single-mask`` exports one mask per call (SAM 2's single mask,
or the best of three when it is unstable), else three.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserInputError
from ..hub.checkpoints import model_from_flags
from ..hub.registry import get_checkpoint_spec, registered_checkpoints
from ..inference.onnx import export_onnx
from ..runtime.threads import configure_threads
from ..sam2 import CONFIGS as SAM2_CONFIGS
from ..sam2 import SAM2Base, build_sam2
from ..sam2.build import Sam2CheckpointError
from ..sam2.onnx import export_sam2_onnx
from .model_flags import add_model_flags, check_model_flags, model_description

#: the options of SAM 1's graph that SAM 2's has not
SAM1_ONLY_OPTIONS = ("use_stability_score", "return_extra_metrics", "gelu_approximate")


def sam2_config(model: str | None) -> str | None:
    """The SAM 2 configuration a ``--model`` value names, or None (a SAM 1 model).

    A configuration's short name (sam2.1_hiera_t) or path (configs/sam2.1/sam2.1_hiera_t.yaml), or a
    registered SAM 2 checkpoint name (sam2.1_hiera_tiny).
    """
    if model is None:
        return None
    if model in registered_checkpoints():
        spec = get_checkpoint_spec(model)
        return spec.config if spec.family == "sam2" and isinstance(spec.config, str) else None
    by_short_name = {Path(name).stem: name for name in SAM2_CONFIGS}
    path = model.lstrip("./")
    return by_short_name.get(model) or (path if path in SAM2_CONFIGS else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets export-onnx", description=(__doc__ or "").split("\n\n")[0],
                                epilog=(__doc__ or "").partition("\n\n")[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    add_model_flags(p, device=False)
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--return-single-mask", action="store_true",
                   help="one mask per call, chosen as the reference does (SAM 1: output 0 with more than 2 points, "
                        "else the best scored of 1..3; SAM 2: its single mask, or the best of three when it is "
                        "unstable); default: all 4 (SAM 2: 3)")
    p.add_argument("--gelu-approximate", action="store_true",
                   help="tanh-approximate GELU, for runtimes without an exact erf (SAM 1)")
    p.add_argument("--use-stability-score", action="store_true",
                   help="replace the predicted IoU by the stability score of each mask (SAM 1)")
    p.add_argument("--return-extra-metrics", action="store_true",
                   help="also output stability_scores and areas (between iou_predictions and low_res_masks; SAM 1)")
    args = p.parse_args(argv)

    config = sam2_config(args.model)
    if config is not None:
        sam1_only = [f"--{name.replace('_', '-')}" for name in SAM1_ONLY_OPTIONS if getattr(args, name)]
        if sam1_only:
            p.error(f"{', '.join(sam1_only)}: an option of SAM 1's graph, not of SAM 2's")
        if args.weights is None and args.model not in registered_checkpoints():
            p.error(f"--model {args.model} is a SAM 2 configuration: give its weights with --weights FILE")
    check_model_flags(args, sam2=True)  # before a model loads: --weights a file, a --model .json a SamConfig, ...
    configure_threads(args.threads)
    if config is not None and args.weights is not None:
        try:
            model = build_sam2(config, args.weights, device="cpu")
        except Sam2CheckpointError as e:  # a file that is no checkpoint, or not one of this configuration
            raise UserInputError(f"--weights {args.weights}: {e}") from e
    else:
        model = model_from_flags(args.model, args.weights, "cpu")

    if isinstance(model, SAM2Base):
        out = export_sam2_onnx(model, args.out, opset=args.opset, multimask_output=not args.return_single_mask)
    else:
        out = export_onnx(model, args.out, opset=args.opset, return_single_mask=args.return_single_mask,
                          use_stability_score=args.use_stability_score,
                          return_extra_metrics=args.return_extra_metrics, gelu_approximate=args.gelu_approximate)
    print(f"{model_description(args)}: decoder written to {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0
