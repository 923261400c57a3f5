"""The procedural scene generator: determinism, hierarchy invariants, occlusion, fills."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

from samwidgets.data import FILL_KINDS, OBJECT_KINDS, Scene, SceneGenerator, sample_point_on

N_SEEDS = 100


@pytest.fixture(scope="module")
def gen() -> SceneGenerator:
    return SceneGenerator()


@pytest.fixture(scope="module")
def scenes(gen) -> list[Scene]:
    return [gen(seed) for seed in range(N_SEEDS)]


def _digest(scene: Scene) -> str:
    h = hashlib.sha256()
    for a in (scene.image, scene.masks, scene.levels, scene.parents, scene.object_ids, scene.full_areas):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr((scene.names, scene.attributes, scene.background)).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# determinism

def test_same_seed_is_bitwise_identical(gen, scenes):
    for seed in (0, 7, 31):
        again = gen(seed)
        assert _digest(again) == _digest(scenes[seed])
        # and from a fresh generator with the same settings
        assert _digest(SceneGenerator()(seed)) == _digest(scenes[seed])


def test_different_seeds_differ(scenes):
    digests = {_digest(s) for s in scenes[:30]}
    assert len(digests) == 30
    assert not np.array_equal(scenes[0].image, scenes[1].image)


def test_golden_digests():
    """Pins the stream: the same seed gives the same scene on every machine and numpy build.

    Only arithmetic that IEEE 754 makes exact (+ - * /, floor, comparisons, integer sums) touches
    arrays. If you change the generator on purpose, regenerate these values.
    """
    gen = SceneGenerator(image_size=128)
    got = [_digest(gen(seed))[:16] for seed in (0, 1, 2)]
    assert got == GOLDEN, got


GOLDEN = ["8052cf55276896f8", "87b43c230e85fbe1", "b6bb236e91860a38"]


# ------------------------------------------------------------------------------------------------
# structure

def test_shapes_and_dtypes(scenes, gen):
    S = gen.image_size
    for sc in scenes[:20]:
        M = len(sc)
        assert sc.image.shape == (S, S, 3) and sc.image.dtype == np.uint8
        assert sc.masks.shape == (M, S, S) and sc.masks.dtype == bool
        assert sc.levels.shape == (M,) and sc.levels.dtype == np.int8
        assert sc.parents.shape == (M,) and sc.parents.dtype == np.int32
        assert sc.object_ids.shape == (M,) and sc.object_ids.dtype == np.int32
        assert sc.full_areas.shape == (M,)
        assert len(sc.names) == M and len(sc.attributes) == M
        assert sc.boxes().shape == (M, 4) and sc.boxes().dtype == np.float32
        for a in sc.attributes:
            assert {"colour", "pattern", "shape"} <= set(a)
            assert all(isinstance(v, str) for v in a.values())


def test_hierarchy_is_consistent(scenes):
    for sc in scenes:
        assert len(sc) > 0
        for i in range(len(sc)):
            p = sc.parents[i]
            if sc.levels[i] == 0:
                assert p == -1
                assert sc.names[i] in OBJECT_KINDS
            else:
                assert 0 <= p < len(sc) and p != i
                assert sc.levels[p] == sc.levels[i] - 1
                assert sc.object_ids[p] == sc.object_ids[i]
                # a part lies inside its parent's visible mask ...
                assert not (sc.masks[i] & ~sc.masks[p]).any()
            chain = sc.chain(i)
            assert chain[0] == i and sc.levels[chain[-1]] == 0 and len(chain) == sc.levels[i] + 1
        assert set(sc.levels.tolist()) <= {0, 1, 2}


def test_every_object_has_a_part_and_levels_shrink(scenes, gen):
    for sc in scenes:
        areas = sc.areas
        for i in np.flatnonzero(sc.levels == 0):
            assert ((sc.parents == i) & (sc.levels == 1)).any(), "whole object without any part"
        for i in np.flatnonzero(sc.levels > 0):
            # ... and strictly smaller, by a margin, so that the nested masks are distinct answers
            assert areas[i] <= gen.max_child_fraction * areas[sc.parents[i]]


def test_most_scenes_have_a_three_level_chain(scenes):
    with_chain = [bool((sc.levels == 2).any()) for sc in scenes[:50]]
    assert np.mean(with_chain) >= 0.8
    # and a good share of parts carry a subpart
    has_sub = [bool((sc.parents == i).any()) for sc in scenes for i in np.flatnonzero(sc.levels == 1)]
    assert np.mean(has_sub) >= 0.45


def test_masks_are_big_enough(scenes, gen):
    for sc in scenes:
        assert (sc.areas >= gen.min_visible_pixels).all()
        assert (sc.areas <= sc.full_areas).all()


def test_objects_and_siblings_do_not_overlap(scenes):
    for sc in scenes:
        whole = sc.masks[sc.levels == 0]
        assert (whole.sum(0) <= 1).all(), "two objects claim one pixel"
        for p in range(len(sc)):
            kids = sc.masks[sc.parents == p]
            if len(kids) > 1:
                assert (kids.sum(0) <= 1).all(), "two siblings claim one pixel"


def test_occlusion_happens(scenes):
    occluded = 0
    for sc in scenes:
        whole = np.flatnonzero(sc.levels == 0)
        occluded += bool((sc.areas[whole] < sc.full_areas[whole]).any())
    assert occluded >= 0.3 * len(scenes)
    # occluded objects are hidden by objects drawn later, which touch them
    for sc in scenes:
        for i in np.flatnonzero(sc.levels == 0):
            if sc.areas[i] < sc.full_areas[i] and sc.object_ids[i] < sc.object_ids.max():
                later = sc.masks[(sc.levels == 0) & (sc.object_ids > sc.object_ids[i])].any(0)
                grown = sc.masks[i].copy()
                grown[1:] |= sc.masks[i][:-1]
                grown[:-1] |= sc.masks[i][1:]
                grown[:, 1:] |= sc.masks[i][:, :-1]
                grown[:, :-1] |= sc.masks[i][:, 1:]
                if (grown & later).any():
                    return
    pytest.fail("no occluded object touches the object in front of it")


def test_boxes_match_masks(scenes):
    for sc in scenes[:20]:
        boxes = sc.boxes()
        for m, b in zip(sc.masks, boxes):
            ys, xs = np.nonzero(m)
            assert tuple(b) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_all_fill_kinds_and_object_kinds_appear(scenes):
    patterns = {a["pattern"] for sc in scenes for a in sc.attributes}
    assert patterns == set(FILL_KINDS)
    assert {sc.background["pattern"] for sc in scenes} == set(FILL_KINDS)
    kinds = {n for sc in scenes for n, lv in zip(sc.names, sc.levels) if lv == 0}
    assert kinds == set(OBJECT_KINDS)
    photos = [a for sc in scenes for a in sc.attributes if a["pattern"] == "photo"]
    assert all("source" in a for a in photos)


def test_images_are_not_flat(scenes):
    for sc in scenes:
        assert sc.image.std() > 10

    # entities stand out from what surrounds them: mean colour inside vs. a 3-pixel ring outside
    ok = total = 0
    for sc in scenes[:30]:
        for i in range(len(sc)):
            m = sc.masks[i]
            grown = m.copy()
            for _ in range(3):
                grown[1:] |= grown[:-1].copy()
                grown[:-1] |= grown[1:].copy()
                grown[:, 1:] |= grown[:, :-1].copy()
                grown[:, :-1] |= grown[:, 1:].copy()
            ring = grown & ~m
            if ring.sum() < 10:
                continue
            total += 1
            d = sc.image[m].mean(0) - sc.image[ring].mean(0)
            ok += float(np.sqrt((d * d).sum())) > 30
    assert ok >= 0.8 * total, (ok, total)


def test_masks_at_and_sample_point(scenes):
    rng = np.random.default_rng(0)
    for sc in scenes[:20]:
        for i in np.flatnonzero(sc.levels == 2)[:3]:
            x, y = sample_point_on(sc.masks[i], rng)
            assert sc.masks[i][int(y), int(x)]
            chain = sc.masks_at(int(x), int(y))
            assert chain[0] == i and chain == sc.chain(i)
            assert [int(sc.levels[j]) for j in chain] == [2, 1, 0]
    p1 = sample_point_on(scenes[0].masks[0], np.random.default_rng(5))
    p2 = sample_point_on(scenes[0].masks[0], np.random.default_rng(5))
    assert np.array_equal(p1, p2) and p1.dtype == np.float32
    with pytest.raises(ValueError):
        sample_point_on(np.zeros((4, 4), bool), rng)


def test_options():
    gen = SceneGenerator(image_size=96, min_objects=2, max_objects=2, kinds=["face", "wheel"],
                         photo_fill_prob=0.0, min_object_size=0.4, max_object_size=0.5)
    for seed in range(10):
        sc = gen(seed)
        assert sc.image.shape == (96, 96, 3)
        assert {n for n, lv in zip(sc.names, sc.levels) if lv == 0} <= {"face", "wheel"}
        assert all(a["pattern"] != "photo" for a in sc.attributes)
    with pytest.raises(ValueError):
        SceneGenerator(kinds=["unicorn"])
    with pytest.raises(ValueError):
        SceneGenerator(min_objects=3, max_objects=2)


def test_generation_is_fast(gen):
    gen(10_000)  # warm the photo cache
    t = time.perf_counter()
    for seed in range(20):
        gen(seed)
    per_scene = (time.perf_counter() - t) / 20
    assert per_scene < 0.1, f"{per_scene * 1e3:.1f} ms per scene"  # ~6 ms on one core; loose for CI
