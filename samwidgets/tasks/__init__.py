"""The paper's zero-shot tasks (section 7), each a function to run on any image plus a metric.

- :mod:`.single_point`: single-point valid mask (section 7.1), the protocol of :mod:`samwidgets.evaluation.procedural`;
- :mod:`.edges`: edge detection from a 16 x 16 grid of masks, scored by ODS/OIS/AP/R50 (section 7.2);
- :mod:`.proposals`: object proposals from a dense point grid, scored by mask average recall (section 7.3);
- :mod:`.instances`: instance segmentation from (noisy ground-truth) boxes, scored by COCO mask AP (section 7.4).

Each module also has an ``evaluate_*`` function that runs its task on held-out procedural scenes.
"""

from .edges import detect_edges, edge_metrics, evaluate_edges, scene_boundaries
from .instances import coco_mask_ap, evaluate_instances, noisy_boxes, segment_instances
from .proposals import evaluate_proposals, mask_average_recall, object_proposals
from .single_point import evaluate_single_point, segment_from_point, single_point_miou

__all__ = [
    "detect_edges", "edge_metrics", "evaluate_edges", "scene_boundaries",
    "coco_mask_ap", "evaluate_instances", "noisy_boxes", "segment_instances",
    "evaluate_proposals", "mask_average_recall", "object_proposals",
    "evaluate_single_point", "segment_from_point", "single_point_miou",
]
