"""Export SAM's prompt encoder and mask decoder to ONNX: ``samwidgets export-onnx``.

    samwidgets export-onnx --out decoder.onnx                                   # the bundled model
    samwidgets export-onnx --model vit_b --weights sam_vit_b_01ec64.pth --out sam_vit_b_decoder.onnx

The graph has the reference's inputs and outputs (``image_embeddings``, ``point_coords``,
``point_labels``, ``mask_input``, ``has_mask_input``, ``orig_im_size`` -> ``masks``,
``iou_predictions``, ``low_res_masks``; see :mod:`samwidgets.inference.onnx`), so the reference's
web demo and other applications built on its export run it unchanged. Feed it the embedding of
``SamPredictor.get_image_embedding()`` and point coordinates in the resized frame
(``predictor.transform.apply_coords``). Needs ``pip install onnx onnxruntime``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..hub.checkpoints import load_model
from ..inference.onnx import export_onnx
from ..runtime.threads import configure_threads
from .model_flags import add_model_flags, model_description


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samwidgets export-onnx", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    add_model_flags(p, device=False)
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--return-single-mask", action="store_true",
                   help="one mask per call, chosen as the reference does (output 0 with more than 2 points, "
                        "else the best scored of 1..3); default: all 4")
    p.add_argument("--gelu-approximate", action="store_true",
                   help="tanh-approximate GELU, for runtimes without an exact erf")
    p.add_argument("--use-stability-score", action="store_true",
                   help="replace the predicted IoU by the stability score of each mask")
    p.add_argument("--return-extra-metrics", action="store_true",
                   help="also output stability_scores and areas (between iou_predictions and low_res_masks)")
    args = p.parse_args(argv)
    configure_threads(args.threads)
    model = load_model(args.model, args.weights, "cpu")
    out = export_onnx(model, args.out, opset=args.opset, return_single_mask=args.return_single_mask,
                      use_stability_score=args.use_stability_score, return_extra_metrics=args.return_extra_metrics,
                      gelu_approximate=args.gelu_approximate)
    print(f"{model_description(args)}: decoder written to {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0
