"""The notebook series as a whole: one setup cell, claims asserted, cross-references that exist, outputs stored.

nbval (run by the README's test command on notebooks/) executes every notebook and fails on any error,
including a failed assert; these tests check what nbval does not: that the series is consistent.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SERIES = [
    "00_quickstart",
    "01_architecture",
    "02_losses_and_training",
    "03_prompting",
    "04_ambiguity",
    "05_zero_shot",
    "06_data_engine",
    "07_text_prompts",
    "08_segment_everything",
    "09_sam_family",
]
#: Photos the bundled model saw in training as fills (samwidgets.data.fills): never "unseen".
TRAINING_FILLS = ("astronaut", "chelsea", "coffee", "rocket", "brick", "grass", "gravel")
DEVELOPMENT_NOTES = ("the project", "will be retrained", "todo", "fixme", "this session", "issue 1")


def load(name: str) -> dict:
    return json.loads((NOTEBOOKS_DIR / f"{name}.ipynb").read_text())


def source(cell: dict) -> str:
    return "".join(cell["source"])


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_series_is_complete() -> None:
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == SERIES


def test_every_notebook_opens_with_the_same_setup_cell() -> None:
    first = {name: source(code_cells(load(name))[0]) for name in SERIES}
    setup = first["00_quickstart"]
    assert 'MODEL = "auto"' in setup and "google.colab" in setup and "%pip install" in setup
    assert all(name in setup for name in ('"vit_b"', '"vit_l"', '"vit_h"'))
    assert "sam = load_model(MODEL)" in setup
    different = [name for name, text in first.items() if text != setup]
    assert not different, f"these notebooks open with another setup cell: {different}"


@pytest.mark.parametrize("name", SERIES)
def test_claims_are_asserted(name: str) -> None:
    asserts = sum(len(re.findall(r"^\s*assert\b", source(c), flags=re.M)) for c in code_cells(load(name)))
    assert asserts >= 3, f"{name} checks {asserts} claims with assert"


@pytest.mark.parametrize("name", SERIES)
def test_outputs_are_stored_from_one_clean_run(name: str) -> None:
    cells = code_cells(load(name))
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, f"{name}: some cells were never run"
    assert counts == list(range(1, len(cells) + 1)), f"{name}: cells were not run once, top to bottom"
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name} stores an error output"


@pytest.mark.parametrize("name", SERIES)
def test_prose_has_no_development_notes(name: str) -> None:
    text = "\n".join(source(c) for c in load(name)["cells"] if c["cell_type"] == "markdown").lower()
    found = [note for note in DEVELOPMENT_NOTES if note in text]
    assert not found, f"{name} carries development notes: {found}"


@pytest.mark.parametrize("name", SERIES)
def test_cross_references_exist_and_where_next_is_there(name: str) -> None:
    nb = load(name)
    text = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    mentioned = set(re.findall(r"\b(\d\d_[a-z_]+)\.ipynb", text))
    assert mentioned <= set(SERIES), f"{name} points to notebooks that do not exist: {mentioned - set(SERIES)}"
    where_next = [source(c) for c in nb["cells"] if c["cell_type"] == "markdown" and "## Where next" in source(c)]
    assert where_next, f"{name} has no 'Where next' section"
    if name != SERIES[-1]:
        assert re.search(r"\d\d_[a-z_]+\.ipynb", where_next[-1]), f"{name}: 'Where next' names no notebook"


@pytest.mark.parametrize("name", SERIES)
def test_training_fills_are_never_called_unseen(name: str) -> None:
    for cell in load(name)["cells"]:
        text = source(cell).lower()
        if "unseen" in text or "never seen" in text or "never trained on" in text:
            fills = [f for f in TRAINING_FILLS if re.search(rf"\b{f}\b", text)]
            assert not fills, f"{name} calls a training fill unseen: {fills} in {text[:200]!r}"


def exercises(nb: dict) -> list[tuple[str, str]]:
    """(heading, the code cell under it) for every markdown cell whose heading starts with "Exercise"."""
    cells, found = nb["cells"], []
    for k, cell in enumerate(cells):
        first_line = source(cell).lstrip().splitlines()[0] if source(cell).strip() else ""
        if cell["cell_type"] == "markdown" and re.match(r"#+\s*Exercise\b", first_line):
            code = next((source(c) for c in cells[k + 1 :] if c["cell_type"] == "code"), "")
            found.append((first_line, code))
    return found


@pytest.mark.parametrize("name", SERIES)
def test_every_notebook_has_exercises_that_check_themselves(name: str) -> None:
    found = exercises(load(name))
    assert len(found) >= 2, f"{name} has {len(found)} exercises (headings starting with 'Exercise'); two at least"
    unchecked = [heading for heading, code in found if not re.search(r"\bcheck_\w+\(", code)]
    assert not unchecked, f"{name}: these exercises call no checker: {unchecked}"
    unanswered = [heading for heading, code in found if "answer = None" not in code]
    assert not unanswered, f"{name}: these exercises do not start unanswered (answer = None): {unanswered}"


@pytest.mark.parametrize("name", SERIES)
def test_every_notebook_has_a_solution_notebook_that_runs_every_checker(name: str) -> None:
    path = NOTEBOOKS_DIR / "solutions" / f"{name}.ipynb"
    assert path.is_file(), f"{name} has no solutions notebook at {path}"
    solution = json.loads(path.read_text())
    assert source(code_cells(solution)[0]) == source(code_cells(load(name))[0]), f"{path.name}: not the series' setup"
    checkers = {c for _, code in exercises(load(name)) for c in re.findall(r"\b(check_\w+)\(", code)}
    solved = {c for cell in code_cells(solution) for c in re.findall(r"\b(check_\w+)\(", source(cell))}
    assert checkers <= solved, f"{path.name} never calls {sorted(checkers - solved)}"
    printed = "".join("".join(o.get("text", "")) for c in code_cells(solution) for o in c.get("outputs", []))
    assert printed.count("Correct:") >= len(checkers), f"{path.name}: its stored outputs do not show every check passed"
    counts = [c["execution_count"] for c in code_cells(solution)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name} was not run once, top to bottom"


def figure_size(data: str) -> tuple[int, int]:
    """Width and height of a stored figure (base64 PNG or JPEG)."""
    return Image.open(io.BytesIO(base64.b64decode(data))).size


@pytest.mark.parametrize("name", SERIES)
def test_figures_are_large_enough_to_project(name: str) -> None:
    # a projected figure: a wide one at least 900 px across; a single square-ish image at least 550 px
    small = []
    for k, cell in enumerate(code_cells(load(name))):
        for output in cell.get("outputs", []):
            for kind in ("image/png", "image/jpeg"):
                if kind not in output.get("data", {}):
                    continue
                width, height = figure_size(output["data"][kind])
                if width < 900 and not (height >= 0.75 * width and width >= 550):
                    small.append((k, width, height))
    assert not small, f"{name}: figures too small to project (code cell, width, height): {small}"
