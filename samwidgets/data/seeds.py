"""Every range of procedural-scene seeds the kit uses, in one place.

A procedural scene is a pure function of its seed (``SceneGenerator(seed)``), so "never trained on"
means "a seed outside every training range". Training draws from the low ranges; everything
evaluated lives at or above :data:`HELD_OUT_SEED_START`, each evaluation in its own block so that
no two of them (and no training run) share a scene. ``tests/test_seeds.py`` checks that the held-out
blocks are at least 10,000 seeds apart and that the training ranges end below them. One overlap is
known and left as it is (moving it would change recorded results): the text SAM's bank for run seed
s is the training range of a run with ``--seed s + 2``; the recorded runs all use seed 0.

=======================  ==============================  =========================================
range                    seeds                           used by
=======================  ==============================  =========================================
training, run seed s     s * 10^7 + step-derived         ``train`` (procedural source), TinyClip
text SAM, run seed s     2 * 10^7 + s * 10^7 + i         ``text.train_sam``'s scene bank
data-engine pool         5 * 10^8 + stage * 10^6 + i     ``data_engine``'s unlabelled images
held-out: point eval     10^9 + i                        ``evaluate``, ``tasks.single_point``
held-out: proposals      10^9 + 10^4 + i                 ``tasks.proposals``
held-out: instances      10^9 + 2 * 10^4 + i             ``tasks.instances``
held-out: engine eval    10^9 + 3 * 10^4 + i             ``data_engine``'s mIoU after retraining
held-out: precision      10^9 + 4 * 10^4 + i             ``precision_check`` (bf16 / compile)
held-out: edges          10^9 + 7 * 10^4 + i             ``tasks.edges``
held-out: text eval      10^9 + 5 * 10^5 + i             ``text.train_clip``, ``text.evaluate``
=======================  ==============================  =========================================
"""

from __future__ import annotations

__all__ = [
    "TRAIN_SEED_STRIDE", "TEXT_SAM_SEED_START", "POOL_SEED_START", "POOL_STAGE_STRIDE", "HELD_OUT_SEED_START",
    "EVALUATE_SEED_START", "PROPOSALS_SEED_START", "INSTANCES_SEED_START", "ENGINE_EVAL_SEED_START",
    "PRECISION_SEED_START", "EDGES_SEED_START", "TEXT_EVAL_SEED_START", "train_seed_offset",
]

#: A training run with ``--seed s`` draws scenes from ``s * TRAIN_SEED_STRIDE`` on.
TRAIN_SEED_STRIDE = 10_000_000
#: The text-prompt SAM's scene bank (``text.train_sam``): from here, plus ``s * TRAIN_SEED_STRIDE``.
TEXT_SAM_SEED_START = 20_000_000
#: The data engine's new (unlabelled) images: stage k from ``POOL_SEED_START + k * POOL_STAGE_STRIDE``.
POOL_SEED_START = 500_000_000
POOL_STAGE_STRIDE = 1_000_000

#: Seeds of training scenes stay below this; every held-out scene is at or above it.
HELD_OUT_SEED_START = 1_000_000_000
#: The paper's point protocol on held-out scenes (``evaluate``, ``tasks.single_point``).
EVALUATE_SEED_START = HELD_OUT_SEED_START
#: Object proposals (``tasks.proposals``).
PROPOSALS_SEED_START = HELD_OUT_SEED_START + 10_000
#: Box-prompted instances (``tasks.instances``).
INSTANCES_SEED_START = HELD_OUT_SEED_START + 20_000
#: The data engine's mIoU after each stage's retraining.
ENGINE_EVAL_SEED_START = HELD_OUT_SEED_START + 30_000
#: The fast modes' agreement with fp32 (``precision_check``).
PRECISION_SEED_START = HELD_OUT_SEED_START + 40_000
#: Edge detection (``tasks.edges``).
EDGES_SEED_START = HELD_OUT_SEED_START + 70_000
#: The text path's held-out scenes (TinyClip's retrieval, the text SAM's evaluation).
TEXT_EVAL_SEED_START = HELD_OUT_SEED_START + 500_000


def train_seed_offset(seed: int) -> int:
    """The first scene seed of a training run with ``--seed seed``: 0 to 49, so that a run's range
    (:data:`TRAIN_SEED_STRIDE` seeds) stays below the data engine's pool and the held-out scenes."""
    top = POOL_SEED_START // TRAIN_SEED_STRIDE - 1
    if not 0 <= seed <= top:
        raise ValueError(f"a training run's seed must be between 0 and {top}, got {seed}: higher seeds would draw "
                         "procedural scenes from the data engine's pool or the held-out range")
    return seed * TRAIN_SEED_STRIDE
