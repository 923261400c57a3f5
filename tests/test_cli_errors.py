"""One error style for every command (issue 28): a user's mistake (an unknown name, a missing file or folder,
a file of the wrong kind, a number out of range) prints one line, ``samwidgets <command>: error: <what is
wrong and the fix>``, and exits with status 2, without a traceback; a bug keeps its traceback, and ``--debug``
shows the traceback of a mistake too.

Every command of ``samwidgets.cli.COMMANDS`` has rows in :data:`CASES` (a test fails for a command without
them). The rows are fast: each mistake is found before any training or data reading, and the names never
reach a download (tests run offline, tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samwidgets.cli import COMMANDS, main, take_debug_flag
from samwidgets.errors import UserInputError
from samwidgets.modeling import CONFIGS
from samwidgets.text import TINY_CLIP_WEIGHTS

UNKNOWN_NAME = "unknown checkpoint name 'vit_q'"

#: (command, kind of mistake, arguments, text the error line must hold); "{name}" is a path of ``files``
CASES: list[tuple[str, str, list[str], str]] = [
    ("train", "unknown name", ["--model", "vit_q", "--out", "{out}/t"], "--model vit_q: not a configuration"),
    ("train", "missing file", ["--weights", "{missing}/w.pt", "--out", "{out}/t"],
     "--weights {missing}/w.pt: no such file"),
    ("train", "bad file", ["--weights", "{garbage}", "--out", "{out}/t"], "{garbage}"),
    ("train", "missing config", ["--model", "{missing}/c.json", "--out", "{out}/t"],
     "--model {missing}/c.json: no such file"),
    ("train", "bad config", ["--model", "{bad_json}", "--out", "{out}/t"], "not a SamConfig .json file"),
    ("train", "missing folder", ["--bsds", "{missing}", "--out", "{out}/t"], "--bsds {missing}: no such folder"),
    ("train", "folder of another layout", ["--bsds", "{empty}", "--out", "{out}/t"], "images/train"),
    ("train", "missing image folder", ["--coco-images", "{missing}", "--coco-annotations", "{bad_json}", "--out",
                                       "{out}/t"], "--coco-images {missing}: no such folder"),
    ("train", "missing annotations", ["--coco-images", "{empty}", "--coco-annotations", "{missing}/i.json", "--out",
                                      "{out}/t"], "--coco-annotations {missing}/i.json: no such file"),
    ("train", "bad annotations", ["--coco-images", "{empty}", "--coco-annotations", "{bad_json}", "--steps", "1",
                                  "--out", "{out}/t", "--no-progress"], "could not read it as a COCO instances JSON"),
    ("train", "half the COCO flags", ["--coco-images", "{empty}", "--out", "{out}/t"], "needs both"),
    ("train", "missing decoder file", ["--init-decoder", "{missing}/d.pt", "--out", "{out}/t"], "--init-decoder"),
    ("train", "no checkpoint to resume", ["--resume", "--out", "{out}/never_run"], "--resume: no checkpoint"),
    ("train", "bad number", ["--bsds", "{bsds}", "--bsds-fraction", "1.5", "--out", "{out}/t"],
     "--bsds-fraction must be in [0, 1]"),
    ("train", "bad number", ["--save-every", "0", "--out", "{out}/t"], "--save-every must be at least 1"),
    ("train", "unknown device", ["--device", "tpu", "--out", "{out}/t"], "--device tpu"),
    ("train", "bad number", ["--threads", "0", "--out", "{out}/t"], "--threads must be at least 1"),

    ("evaluate", "unknown name", ["--model", "vit_q"], UNKNOWN_NAME),
    ("evaluate", "a model it does not run", ["--model", "sam2.1_hiera_tiny"], "a SAM 2 model"),
    ("evaluate", "missing file", ["--weights", "{missing}/w.pt"], "--weights {missing}/w.pt: no such file"),
    ("evaluate", "bad file", ["--weights", "{garbage}"], "{garbage}"),
    ("evaluate", "bad config", ["--model", "{bad_json}", "--weights", "{garbage}"], "not a SamConfig .json file"),
    ("evaluate", "config without weights", ["--model", "{config_json}"], "give its weights with --weights"),
    ("evaluate", "missing folder", ["--bsds", "{missing}"], "--bsds {missing}: no such folder; pass the BSDS500"),
    ("evaluate", "folder of another layout", ["--bsds", "{empty}"], "images/val"),
    ("evaluate", "unknown split", ["--bsds", "{bsds}", "--split", "nope"], "--split nope"),
    ("evaluate", "missing GrabCut folder", ["--bsds", "{bsds}", "--grabcut", "{missing}"], "--grabcut"),
    ("evaluate", "bad number", ["--scenes", "0"], "--scenes must be at least 1"),

    ("generate", "missing folder", ["{missing}", "--out", "{out}/g"], "{missing}: no such file or folder"),
    ("generate", "no images", ["{empty}", "--out", "{out}/g"], "no images found in {empty}"),
    ("generate", "unknown name", ["{images}", "--out", "{out}/g", "--model", "vit_q"], UNKNOWN_NAME),
    ("generate", "missing file", ["{images}", "--out", "{out}/g", "--weights", "{missing}/w.pt"],
     "checkpoint file not found"),
    ("generate", "bad file", ["{images}", "--out", "{out}/g", "--weights", "{garbage}"], "{garbage}"),
    ("generate", "a model it does not run", ["{images}", "--out", "{out}/g", "--model", "sam2.1_hiera_tiny"],
     "a SAM 2 model"),
    ("generate", "bad number", ["{images}", "--out", "{out}/g", "--points-per-side", "0"],
     "--points-per-side must be at least 1"),

    ("embed", "missing folder", ["{missing}", "--out", "{out}/e"], "{missing}: no such file or folder"),
    ("embed", "no images", ["{empty}", "--out", "{out}/e"], "no images found in {empty}"),
    ("embed", "unknown name", ["{images}", "--out", "{out}/e", "--model", "vit_q"], UNKNOWN_NAME),
    ("embed", "missing file", ["{images}", "--out", "{out}/e", "--weights", "{missing}/w.pt"],
     "checkpoint file not found"),
    ("embed", "bad file", ["{images}", "--out", "{out}/e", "--weights", "{garbage}"], "{garbage}"),
    ("embed", "bad number", ["{images}", "--out", "{out}/e", "--threads", "0"], "--threads must be at least 1"),

    ("bench", "unknown name", ["--configs", "vit_q"], "--configs vit_q: unknown configuration"),
    ("bench", "missing file", ["--configs", "{missing}/c.json"], "--configs {missing}/c.json: no such config file"),
    ("bench", "bad file", ["--configs", "{bad_json}"], "not a SamConfig .json file"),
    ("bench", "missing folder", ["--train-step", "--configs", "default_tiny", "--bsds", "{missing}"],
     "--bsds {missing}: no such folder"),
    ("bench", "bad shape", ["--train-step", "--configs", "default_tiny", "--shapes", "8x4"], "--shapes 8x4"),
    ("bench", "bad number", ["--encoder-runs", "0"], "--encoder-runs must be at least 1"),

    ("export-onnx", "unknown name", ["--out", "{out}/x.onnx", "--model", "vit_q"], UNKNOWN_NAME),
    ("export-onnx", "unknown configuration", ["--out", "{out}/x.onnx", "--model", "vit_q", "--weights", "{garbage}"],
     "unknown model 'vit_q'"),
    ("export-onnx", "missing file", ["--out", "{out}/x.onnx", "--weights", "{missing}/w.pt"],
     "--weights {missing}/w.pt: no such file"),
    ("export-onnx", "bad file", ["--out", "{out}/x.onnx", "--weights", "{garbage}"], "{garbage}"),
    ("export-onnx", "bad SAM 2 file", ["--out", "{out}/x.onnx", "--model", "sam2.1_hiera_t", "--weights",
                                       "{garbage}"], "--weights {garbage}: could not read"),
    ("export-onnx", "bad config", ["--out", "{out}/x.onnx", "--model", "{bad_json}", "--weights", "{garbage}"],
     "not a SamConfig .json file"),
    ("export-onnx", "config without weights", ["--out", "{out}/x.onnx", "--model", "{config_json}"],
     "give its weights with --weights"),

    ("data-engine", "unknown name", ["--out", "{out}/d", "--model", "vit_q"], UNKNOWN_NAME),
    ("data-engine", "missing file", ["--out", "{out}/d", "--weights", "{missing}/w.pt"], "no such file"),
    ("data-engine", "bad file", ["--out", "{out}/d", "--weights", "{garbage}"], "{garbage}"),
    ("data-engine", "bad number", ["--out", "{out}/d", "--images", "2", "-1", "2"], "--images must be at least 0"),
    ("data-engine", "bad image size", ["--out", "{out}/d", "--image-size", "100"], "--image-size 100"),

    ("train-clip", "bad number", ["--out", "{out}/clip.pt", "--scenes", "0"], "--scenes must be at least 1"),
    ("train-clip", "bad number", ["--out", "{out}/clip.pt", "--batch-size", "0"], "--batch-size must be at least 1"),

    ("train-text", "missing file", ["--clip", "{missing}/c.pt", "--out", "{out}/t.pt"],
     "--clip {missing}/c.pt: no such file"),
    ("train-text", "bad file", ["--clip", "{garbage}", "--out", "{out}/t.pt"], "could not read it as a TinyClip file"),
    ("train-text", "unknown name", ["--clip", "{clip}", "--out", "{out}/t.pt", "--model", "vit_q"], UNKNOWN_NAME),
    ("train-text", "missing weights", ["--clip", "{clip}", "--out", "{out}/t.pt", "--weights", "{missing}/w.pt"],
     "--weights {missing}/w.pt: no such file"),
    ("train-text", "bad number", ["--clip", "{clip}", "--out", "{out}/t.pt", "--steps", "0"],
     "--steps must be at least 1"),

    ("evaluate-text", "a flag it has not", ["--model", "vit_b"], "give the file with --weights"),
    ("evaluate-text", "missing file", ["--weights", "{missing}/t.pt"], "--weights {missing}/t.pt: no such file"),
    ("evaluate-text", "bad file", ["--weights", "{garbage}"], "could not read it as a text-prompt SAM file"),
    ("evaluate-text", "missing CLIP file", ["--clip", "{missing}/c.pt"], "--clip {missing}/c.pt: no such file"),
    ("evaluate-text", "bad CLIP file", ["--clip", "{garbage}"], "could not read it as a TinyClip file"),
    ("evaluate-text", "unknown base name", ["--base-model", "vit_q"], UNKNOWN_NAME),
    ("evaluate-text", "missing base weights", ["--base-weights", "{missing}/w.pt"], "--base-weights"),
    ("evaluate-text", "bad number", ["--scenes", "0"], "--scenes must be at least 1"),

    ("evaluate-edges", "missing folder", ["--bsds", "{missing}"], "groundTruth/val"),
    ("evaluate-edges", "unknown split", ["--bsds", "{bsds}", "--split", "nope"], "--split nope"),
    ("evaluate-edges", "unknown name", ["--bsds", "{bsds}", "--model", "vit_q"], UNKNOWN_NAME),
    ("evaluate-edges", "missing file", ["--bsds", "{bsds}", "--weights", "{missing}/w.pt"], "no such file"),
    ("evaluate-edges", "bad file", ["--bsds", "{bsds}", "--weights", "{garbage}"], "{garbage}"),
    ("evaluate-edges", "bad number", ["--bsds", "{bsds}", "--limit", "0"], "--limit must be at least 1"),

    ("calibrate-generator", "missing folder", ["--bsds", "{missing}", "--out", "{out}/a"], "--bsds {missing}"),
    ("calibrate-generator", "unknown name", ["--bsds", "{bsds}", "--out", "{out}/a", "--model", "vit_q"], UNKNOWN_NAME),
    ("calibrate-generator", "missing file", ["--bsds", "{bsds}", "--out", "{out}/a", "--weights", "{missing}/w.pt"],
     "no such file"),
    ("calibrate-generator", "bad file", ["--bsds", "{bsds}", "--out", "{out}/a", "--weights", "{garbage}"],
     "{garbage}"),
    ("calibrate-generator", "bad number", ["--bsds", "{bsds}", "--out", "{out}/a", "--photos", "0"],
     "--photos must be at least 1"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The paths the rows name: files of the wrong kind, an empty folder, a BSDS500 layout, one image."""
    root = tmp_path_factory.mktemp("cli_errors")
    (root / "garbage.pt").write_bytes(b"\x00not a checkpoint\xff" * 64)
    (root / "bad.json").write_text("{not json")
    (root / "tiny.json").write_text(json.dumps(CONFIGS["default_tiny"].to_dict()))
    (root / "empty").mkdir()
    for split in ("train", "val"):  # listed, never read: every row stops before a photo is opened
        for folder, suffix in (("images", ".jpg"), ("groundTruth", ".mat")):
            (root / "bsds" / folder / split).mkdir(parents=True)
            (root / "bsds" / folder / split / f"1000{suffix}").write_bytes(b"")
    (root / "photos").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "photos" / "a.png")
    paths = {"garbage": root / "garbage.pt", "bad_json": root / "bad.json", "config_json": root / "tiny.json",
             "empty": root / "empty", "bsds": root / "bsds", "images": root / "photos", "out": root / "out",
             "missing": root / "missing", "clip": TINY_CLIP_WEIGHTS}
    return {name: str(path) for name, path in paths.items()}


def one_error_line(command: str, code: int, err: str) -> str:
    """The one line a user's mistake prints, after checking the status and that nothing else was printed."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"samwidgets {command}: error: "), err
    return lines[0]


@pytest.mark.parametrize(("command", "kind", "argv", "expected"), CASES,
                         ids=[f"{command}-{kind}" for command, kind, _, _ in CASES])
def test_a_users_mistake_is_one_line_with_status_2(command, kind, argv, expected, files, capsys):
    capsys.readouterr()
    code = main([command, *(arg.format(**files) for arg in argv)])
    line = one_error_line(command, code, capsys.readouterr().err)
    assert expected.format(**files) in line


def test_every_command_has_rows():
    """A new command fails here until its mistakes have rows in CASES."""
    assert {command for command, *_ in CASES} == set(COMMANDS)


@pytest.mark.parametrize("error", [RuntimeError("a bug of ours"), ValueError("a bug of ours"),
                                   KeyError("a bug of ours"), FileNotFoundError("a bug of ours")],
                         ids=lambda e: type(e).__name__)
def test_a_bug_keeps_its_traceback(error, monkeypatch, capsys):
    import samwidgets.cli.evaluate as command

    def broken(argv):
        raise error

    monkeypatch.setattr(command, "main", broken)
    with pytest.raises(type(error), match="a bug of ours"):
        main(["evaluate"])
    assert "error:" not in capsys.readouterr().err


def test_a_message_of_several_lines_is_printed_on_one(monkeypatch, capsys):
    import samwidgets.cli.evaluate as command

    def mistaken(argv):
        raise UserInputError("what is wrong\n  and how to fix it\n")

    monkeypatch.setattr(command, "main", mistaken)
    line = one_error_line("evaluate", main(["evaluate"]), capsys.readouterr().err)
    assert line == "samwidgets evaluate: error: what is wrong; and how to fix it"


@pytest.mark.parametrize("argv", [["--debug", "evaluate", "--bsds", "{missing}"],
                                  ["evaluate", "--bsds", "{missing}", "--debug"]], ids=["first", "last"])
def test_debug_raises_the_mistake_with_its_traceback(argv, files, capsys):
    with pytest.raises(UserInputError, match="--bsds"):
        main([arg.format(**files) for arg in argv])
    assert "error:" not in capsys.readouterr().err


def test_debug_is_taken_out_before_the_command_parses():
    assert take_debug_flag(["evaluate", "--debug", "--scenes", "3"]) == (["evaluate", "--scenes", "3"], True)
    assert take_debug_flag(["evaluate", "--scenes", "3"]) == (["evaluate", "--scenes", "3"], False)
    assert take_debug_flag(["generate", "--", "--debug"]) == (["generate", "--", "--debug"], False)  # a file name


def test_argparse_exits_are_left_to_argparse(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--no-such-option"])
    assert info.value.code == 2 and "samwidgets evaluate: error: unrecognized arguments" in capsys.readouterr().err


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samwidgets", *argv], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent)


def test_the_entry_point_prints_one_line_and_exits_2():
    result = _run("evaluate", "--bsds", "/nonexistent")
    line = one_error_line("evaluate", result.returncode, result.stderr)
    assert "--bsds /nonexistent: no such folder" in line


def test_the_entry_point_with_debug_shows_the_traceback():
    result = _run("evaluate", "--bsds", "/nonexistent", "--debug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "UserInputError: --bsds /nonexistent: no such folder" in result.stderr
