"""Zero-shot edge detection with SAM, as in the SAM paper (section 7.2, appendix D.2).

SAM was never trained to find edges, yet the boundaries of the masks it
proposes are edges. The recipe::

    edges = detect_edges(load_default(), image)          # H x W float32 in [0, 1], thin edges

1. prompt SAM with a 16 x 16 grid of points, 3 masks each (768 masks), with
   no predicted-IoU or stability filtering;
2. remove redundant masks with box NMS (scored by predicted IoU);
3. for every remaining mask, Sobel-filter its *unthresholded* probability map
   (sigmoid of the upsampled logits) and zero the responses that are away from
   the mask's outer boundary pixels;
4. pixel-wise max over the masks, linear normalisation to [0, 1];
5. edge NMS along the gradient direction, then morphological thinning.

Evaluation follows the BSDS500 protocol (:func:`edge_metrics`: ODS, OIS, AP,
R50) against the object boundaries of held-out procedural scenes
(:func:`scene_boundaries`, :func:`evaluate_edges`), with a plain Sobel of the
image as a baseline (:func:`sobel_baseline`).

The paper's BSDS500 numbers for SAM ViT-H (ODS .768, OIS .786, AP .794,
R50 .928) are on real photographs against human annotations; numbers on the
procedural scenes of this kit, with the small bundled model, are **not
comparable** to them (other images, other ground truth, another model).

Needs scipy and scikit-image (``pip install scipy scikit-image``) for the
distance transform and the thinning; they are imported when first needed.

The modules, one job each (every public name is re-exported here):

- :mod:`.detect`: SAM's pipeline, point grid -> masks -> boundary Sobel -> edge map (:func:`detect_edges`);
- :mod:`.filters`: Sobel, the boundary band, edge NMS, thinning, and the Sobel baseline;
- :mod:`.ground_truth`: one-pixel boundary maps of procedural scenes (:func:`scene_boundaries`);
- :mod:`.metrics`: the BSDS metrics (:func:`edge_metrics`) and the paper's numbers (``BSDS_SAM_VIT_H``);
- :mod:`.evaluation`: both detectors on held-out scenes, scored alike (:func:`evaluate_edges`).
"""

from .detect import detect_edges
from .evaluation import evaluate_edges
from .filters import edge_nms, mask_boundary_band, sobel, sobel_baseline, thin_edges
from .ground_truth import scene_boundaries
from .metrics import BSDS_SAM_VIT_H, edge_metrics

__all__ = [
    "BSDS_SAM_VIT_H",
    "detect_edges",
    "edge_metrics",
    "edge_nms",
    "evaluate_edges",
    "mask_boundary_band",
    "scene_boundaries",
    "sobel",
    "sobel_baseline",
    "thin_edges",
]
