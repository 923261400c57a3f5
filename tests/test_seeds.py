"""The scene-seed ranges: every evaluation has its own held-out block, above every training range."""

from __future__ import annotations

import pytest

from samwidgets.data import seeds


def test_held_out_blocks_are_disjoint_and_above_training():
    # each held-out evaluation starts its own block of at least 10,000 scenes (they use at most hundreds)
    starts = sorted([seeds.EVALUATE_SEED_START, seeds.PROPOSALS_SEED_START, seeds.INSTANCES_SEED_START,
                     seeds.ENGINE_EVAL_SEED_START, seeds.PRECISION_SEED_START, seeds.EDGES_SEED_START,
                     seeds.TEXT_EVAL_SEED_START])
    assert starts[0] == seeds.HELD_OUT_SEED_START
    assert all(b - a >= 10_000 for a, b in zip(starts, starts[1:]))
    # training ranges end below the held-out range: 50 run seeds, 10 engine stages
    assert seeds.train_seed_offset(49) + seeds.TRAIN_SEED_STRIDE <= seeds.POOL_SEED_START
    assert seeds.TEXT_SAM_SEED_START + seeds.train_seed_offset(47) + seeds.TRAIN_SEED_STRIDE <= seeds.POOL_SEED_START
    assert seeds.POOL_SEED_START + 10 * seeds.POOL_STAGE_STRIDE <= seeds.HELD_OUT_SEED_START


def test_recorded_results_keep_their_seeds():
    """The values the recorded evaluations used, also where older code imports them from."""
    from samwidgets.cli.evaluate_text import TEXT_EVAL_SEED_START
    from samwidgets.data_engine.engine import ENGINE_EVAL_SEED_START, POOL_SEED_START
    from samwidgets.tasks.proposals import PROPOSALS_SEED_START
    from samwidgets.training.datasets import HELD_OUT_SEED_START

    assert (HELD_OUT_SEED_START, PROPOSALS_SEED_START, ENGINE_EVAL_SEED_START, POOL_SEED_START,
            TEXT_EVAL_SEED_START) == (1_000_000_000, 1_000_010_000, 1_000_030_000, 500_000_000, 1_000_500_000)


def test_a_run_seed_that_would_reach_other_ranges_is_refused():
    assert seeds.train_seed_offset(49) == 49 * seeds.TRAIN_SEED_STRIDE
    for bad in (50, 100, -1):  # 100 would start exactly at the held-out scenes
        with pytest.raises(ValueError, match="between 0 and 49"):
            seeds.train_seed_offset(bad)
