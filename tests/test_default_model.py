"""The bundled default model loads offline and really segments held-out procedural scenes."""

from __future__ import annotations

import numpy as np

from samwidgets import SamPredictor, from_pretrained, load_default, sam_model_registry
from samwidgets.data import SceneGenerator
from samwidgets.data.masks import mask_iou
from samwidgets.data.seeds import HELD_OUT_SEED_START


def test_loads_three_ways_and_segments_with_boxes():
    model = load_default(device="cpu")
    assert sam_model_registry["default_cnn"]().config == model.config
    assert from_pretrained("default_cnn", device="cpu").config == model.config
    predictor = SamPredictor(model)
    generator = SceneGenerator(image_size=model.config.image_size)
    ious = []
    for s in range(3):
        scene = generator(HELD_OUT_SEED_START + 500 + s)
        predictor.set_image(scene.image)
        for j in np.flatnonzero(scene.levels == 0):
            ys, xs = np.nonzero(scene.masks[j])
            masks, _, _ = predictor.predict(box=[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                            multimask_output=False)
            ious.append(mask_iou(masks[0], scene.masks[j]))
    # a random model scores near 0 here; the bundled one must clearly segment whole objects
    assert np.mean(ious) > 0.4, ious


def test_the_bundled_config_is_the_recipe_model():
    """The bundled model is the photo recipe's 512 px model (recipes/bsds_cnn/cnn_512.json), byte for byte;
    the first bundled model's ViT configuration stays buildable for the architecture lessons."""
    import json
    from pathlib import Path

    from samwidgets import CONFIGS, SamConfig
    from samwidgets.hub.registry import BUNDLED_MODEL_NAME

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "bsds_cnn" / "cnn_512.json"
    assert SamConfig.from_dict(json.loads(recipe.read_text())) == CONFIGS[BUNDLED_MODEL_NAME]
    vit = sam_model_registry["default_tiny"]()  # random weights: the configuration only
    assert vit.config.encoder_type == "vit" and vit.config.image_size == 256
    assert sum(p.numel() for p in vit.parameters()) < 3e6
