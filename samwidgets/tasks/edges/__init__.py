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
R50; an image may have several annotators' boundary maps), with a plain Sobel
of the image as a baseline (:func:`sobel_baseline`), on two kinds of data:

- BSDS500 photos against every annotator's boundaries, the paper's setting
  (:func:`evaluate_edges_bsds`, command ``samwidgets evaluate-edges``); the
  paper's numbers for SAM ViT-H (ODS .768, OIS .786, AP .794, R50 .928) are
  on the 200 test photos, the rest of its Table 3 in ``BSDS_PAPER_TABLE3``;
- held-out procedural scenes against their exact region outlines
  (:func:`scene_boundaries`, :func:`evaluate_edges`), which are **not
  comparable** with the paper's numbers (other images, other ground truth).

Needs scipy and scikit-image (``pip install scipy scikit-image``) for the
distance transform and the thinning; they are imported when first needed.

The modules, one job each (every public name is re-exported here):

- :mod:`.detect`: SAM's pipeline, point grid -> masks -> boundary Sobel -> edge map (:func:`detect_edges`);
- :mod:`.filters`: Sobel, the boundary band, edge NMS, thinning, and the Sobel baseline;
- :mod:`.ground_truth`: one-pixel boundary maps of procedural scenes (:func:`scene_boundaries`);
- :mod:`.bsds`: every annotator's boundary maps of a BSDS500 photo (:func:`load_bsds_boundaries`);
- :mod:`.metrics`: the BSDS metrics (:func:`edge_metrics`, per image :func:`edge_match_counts`, from
  counts :func:`metrics_from_counts`) and the paper's numbers (``BSDS_SAM_VIT_H``, ``BSDS_PAPER_TABLE3``);
- :mod:`.evaluation`: both detectors scored alike, on held-out scenes (:func:`evaluate_edges`) or on
  BSDS500 (:func:`evaluate_edges_bsds`, :func:`edges_bsds_markdown`, a small JSON record with
  :func:`edges_bsds_record`, its metrics recomputed by :func:`metrics_from_record`).
"""

from .bsds import BSDS_LAYOUT, check_bsds_root, load_bsds_boundaries
from .detect import detect_edges
from .evaluation import edges_bsds_markdown, edges_bsds_record, evaluate_edges, evaluate_edges_bsds, metrics_from_record
from .filters import edge_nms, mask_boundary_band, sobel, sobel_baseline, thin_edges
from .ground_truth import scene_boundaries
from .metrics import (
    BSDS_PAPER_TABLE3,
    BSDS_SAM_VIT_H,
    COUNT_COLUMNS,
    edge_match_counts,
    edge_metrics,
    edge_thresholds,
    metrics_from_counts,
)

__all__ = [
    "BSDS_LAYOUT",
    "BSDS_PAPER_TABLE3",
    "BSDS_SAM_VIT_H",
    "COUNT_COLUMNS",
    "check_bsds_root",
    "detect_edges",
    "edge_match_counts",
    "edge_metrics",
    "edge_nms",
    "edge_thresholds",
    "edges_bsds_markdown",
    "edges_bsds_record",
    "evaluate_edges",
    "evaluate_edges_bsds",
    "load_bsds_boundaries",
    "metrics_from_counts",
    "metrics_from_record",
    "mask_boundary_band",
    "scene_boundaries",
    "sobel",
    "sobel_baseline",
    "thin_edges",
]
