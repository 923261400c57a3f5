"""The whole notebook series with an official model's checkpoint file, given by path through $SAMWIDGETS_MODEL.

Every notebook must run with any model: its mechanics asserts hold for every model, and its quality asserts are
tied to the bundled model (``is_bundled(sam)``). This test writes a checkpoint of random weights in the official
format (every key and shape of the real file, ``tests/data/*_state_dict.txt``), sets $SAMWIDGETS_MODEL to its path
(what a teacher does for a whole class) and runs each notebook top to bottom: no cell may raise.

It is slow (a random ``vit_b`` encodes each image in seconds on a CPU), so it runs only when asked, outside CI:

    python -m pytest tests/test_series_any_model.py --series-model vit_b --series-model mobile_sam -s

The time of each notebook is printed (``-s``); notebooks/README.md records a run.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from random_weights import random_state_dict, read_shapes

from samwidgets.io.network import OFFLINE_ENV
from samwidgets.teaching.models import MODEL_ENV

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SERIES = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
KEY_LISTS = {"vit_b": "sam_vit_b_state_dict.txt", "mobile_sam": "mobile_sam_vit_t_state_dict.txt"}


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("official_format")
    paths = {}
    for name, key_list in KEY_LISTS.items():
        paths[name] = folder / f"{name}_random.pth"
        torch.save(random_state_dict(read_shapes(Path(__file__).parent / "data" / key_list)), paths[name])
    return paths


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a notebook with a random vit_b takes up to 15 minutes on 2 cores
@pytest.mark.parametrize("model", sorted(KEY_LISTS))
@pytest.mark.parametrize("notebook", SERIES)
def test_the_series_runs_with_an_official_checkpoint_by_path(request, monkeypatch, model, notebook):
    if model not in request.config.getoption("--series-model"):
        pytest.skip(f"outside CI: run with --series-model {model}")
    checkpoint = request.getfixturevalue("random_checkpoints")[model]
    monkeypatch.setenv(MODEL_ENV, str(checkpoint))
    monkeypatch.setenv(OFFLINE_ENV, "1")  # the kernel inherits both; nothing is fetched
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first failing cell
    seconds = time.perf_counter() - start
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"${MODEL_ENV} = " in printed, f"{notebook} did not say that $SAMWIDGETS_MODEL chose its model"
    print(f"\n{notebook} with a random {model} checkpoint by path: {seconds:.0f} s")
