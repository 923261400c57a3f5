"""Autosave proven: a real kernel builds a canvas with autosave, commits objects, is killed mid-edit, and the
file brings back every committed object exactly (the object being edited is the only loss, as promised)."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from jupyter_client.manager import KernelManager

from samwidgets import SamPredictor, load_default
from samwidgets.widget import SamCanvas

KERNEL_CODE = """
import json
import numpy as np
from scipy import ndimage
from samwidgets import SamPredictor, load_default
from samwidgets.data import SceneGenerator
from samwidgets.data.seeds import HELD_OUT_SEED_START
from samwidgets.widget import SamCanvas

scenes = [SceneGenerator(image_size=256)(HELD_OUT_SEED_START + 60 + i) for i in range(2)]
canvas = SamCanvas(SamPredictor(load_default(device="cpu")), [s.image for s in scenes], autosave={autosave!r})

def centre(mask):
    d = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return float(x), float(y)

for j in range(2):  # two objects on the first image, one on the second
    canvas.add_point(*centre(scenes[0].masks[j]))
    canvas.new_object(f"thing {{j}}")
canvas.next_image()
canvas.add_point(*centre(scenes[1].masks[0]))
canvas.new_object("other")
committed = [[(o.id, o.label, o.mask) for o in canvas.session.state_of(i).objects] for i in range(2)]
np.savez({expected!r}, **{{f"{{i}}_{{oid}}": mask for i, objs in enumerate(committed) for oid, _, mask in objs}})
with open({labels!r}, "w") as f:
    json.dump([[(oid, label) for oid, label, _ in objs] for objs in committed], f)
canvas.previous_image()
canvas.add_point(*centre(scenes[0].masks[2]))  # an edit under way, never committed
print("ready", canvas.last_error)
"""


@pytest.mark.slow
def test_a_killed_kernel_loses_only_the_object_being_edited(tmp_path):
    autosave, expected, labels = tmp_path / "autosave.json", tmp_path / "expected.npz", tmp_path / "labels.json"
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path))
    try:
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        output = []
        reply = client.execute_interactive(
            KERNEL_CODE.format(autosave=str(autosave), expected=str(expected), labels=str(labels)), timeout=300,
            output_hook=lambda msg: output.append(msg["content"].get("text", "") or str(msg["content"])))
        assert reply["content"]["status"] == "ok", "".join(output)
        assert "ready None" in "".join(output)
        client.stop_channels()
        km.signal_kernel(signal.SIGKILL)  # a crash: no shutdown hook, no atexit, no last save
        deadline = time.monotonic() + 30
        while km.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not km.is_alive()
    finally:
        if km.has_kernel and km.is_alive():
            km.shutdown_kernel(now=True)

    masks = np.load(expected)
    committed = json.loads(labels.read_text())
    assert [len(objs) for objs in committed] == [2, 1]
    from samwidgets.data import SceneGenerator
    from samwidgets.data.seeds import HELD_OUT_SEED_START

    scenes = [SceneGenerator(image_size=256)(HELD_OUT_SEED_START + 60 + i) for i in range(2)]
    canvas = SamCanvas.load(autosave, SamPredictor(load_default(device="cpu")), images=[s.image for s in scenes])
    try:
        for i, objs in enumerate(committed):
            restored = canvas.session.state_of(i).objects
            assert [(o.id, o.label) for o in restored] == [tuple(x) for x in objs]  # all, and only, the committed
            for obj in restored:
                np.testing.assert_array_equal(obj.mask, masks[f"{i}_{obj.id}"])  # exactly
    finally:
        canvas.close()
