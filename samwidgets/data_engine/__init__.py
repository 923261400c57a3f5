"""The data engine in miniature (paper section 4): assisted-manual, semi-automatic, fully automatic.

``python -m samwidgets data-engine --out runs/engine`` runs the three stages
on procedural scenes, retraining the model after each, and writes the
table, the retrained weights and each stage's masks as SA-1B files.
"""

from .annotator import Annotation, AnnotatorConfig, SimulatedAnnotator
from .engine import EngineConfig, StageReport, export_stage, load_report, report_markdown, run_engine
from .stages import STAGE_NAMES, EngineImage, StageResult, assisted_manual, fully_automatic, semi_automatic

__all__ = [
    "Annotation", "AnnotatorConfig", "EngineConfig", "EngineImage", "STAGE_NAMES", "SimulatedAnnotator", "StageReport",
    "StageResult", "assisted_manual", "export_stage", "fully_automatic", "load_report", "report_markdown", "run_engine",
    "semi_automatic",
]
