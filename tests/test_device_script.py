"""The GPU test script (tests/device/run.sh) and the lent call's driver (tests/device/lent.sh), on the CPU: so that
they work the first time they meet a GPU. run.sh writes its summary and log to OUT and its exit status says
whether every part passed; without a GPU its default (cuda) run stops at once and says why; a failure or the
deadline fails the run. lent.sh runs the tests, then gives the trainer the time the call has left.

The selections here are tiny (one fast test, throw-away tests and notebooks in tmp_path): what is tested is
the scripts' own logic, not the tests they run on a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "device" / "run.sh"
LENT = ROOT / "tests" / "device" / "lent.sh"
FAST_TEST = "tests/test_fast_paths.py::test_window_partition_filled"  # takes test_device: the device reaches it


def _run(script: Path, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, str, str]:
    """(the finished script, summary.txt, tests.log) with OUT in tmp_path and ``env`` on top of this process's."""
    out = tmp_path / "out"
    full_env = {**os.environ, "OUT": str(out), **env}
    full_env.pop("SAMWIDGETS_TEST_DEVICE", None)  # run.sh sets it from DEVICE
    result = subprocess.run(["bash", str(script)], env=full_env, capture_output=True, text=True, timeout=300)
    read = lambda name: (out / name).read_text() if (out / name).exists() else ""
    return result, read("summary.txt"), read("tests.log")


def _notebook(path: Path, *sources: str) -> str:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": source} for i, source in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return str(path)


@pytest.mark.slow
def test_a_cpu_run_writes_its_summary_and_log_and_passes(tmp_path):
    """The repository's own configuration and conftest: a device-aware test, on the CPU, passes."""
    result, summary, log = _run(RUN, tmp_path, DEVICE="cpu", TESTS=FAST_TEST, NOTEBOOKS="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary.startswith("device: cpu\n")
    assert "pytest: passed in " in summary and ": 1 passed" in summary
    assert summary.splitlines()[-1].startswith("tests: passed on cpu in ")
    assert "======== pytest: passed" in log and "1 passed" in log
    assert result.stdout.strip().endswith(summary.splitlines()[-1])  # the tool's output_tail shows the verdict


def test_without_a_gpu_the_default_cuda_run_stops_at_once(tmp_path):
    """DEVICE unset means cuda. (A script that went on would fail the test with status 1: the test_device fixture
    fails every test where CUDA is missing.)"""
    started = time.perf_counter()
    result, summary, log = _run(RUN, tmp_path, CUDA_VISIBLE_DEVICES="", TESTS=FAST_TEST, NOTEBOOKS="")
    assert result.returncode == 2
    assert "DEVICE=cuda but torch" in result.stderr and "sees no CUDA GPU" in result.stderr
    assert summary.startswith("tests: not run: DEVICE=cuda but torch") and "pytest" not in summary
    assert log == ""  # nothing was unpacked or run
    assert time.perf_counter() - started < 60


def test_a_failed_test_fails_the_run_and_its_report_comes_back(tmp_path):
    (tmp_path / "test_planted.py").write_text("def test_fails():\n    assert 1 == 2\n")
    result, summary, log = _run(RUN, tmp_path, DEVICE="cpu", NOTEBOOKS="", TESTS=str(tmp_path / "test_planted.py"))
    assert result.returncode == 1
    assert "pytest: failed (exit status 1) in " in summary and "1 failed" in summary
    assert "    FAILED " in summary and "::test_fails - assert 1 == 2" in summary  # named in the summary too
    assert summary.splitlines()[-1].startswith("tests: FAILED on cpu in ")
    assert "assert 1 == 2" in log  # the failure's own report travels back


def test_what_runs_past_the_deadline_is_stopped_and_fails_the_run(tmp_path):
    """TEST_SECONDS=5: the test that sleeps 10 minutes is stopped (or, on a slow machine, never started)."""
    (tmp_path / "test_planted.py").write_text("import time\n\ndef test_sleeps():\n    time.sleep(600)\n")
    started = time.perf_counter()
    result, summary, _ = _run(RUN, tmp_path, DEVICE="cpu", NOTEBOOKS="", TEST_SECONDS="5",
                              TESTS=str(tmp_path / "test_planted.py"))
    assert result.returncode == 1 and time.perf_counter() - started < 60  # 5 s, and the shell's own start
    assert "pytest: timed out in " in summary
    assert summary.splitlines()[-1].startswith("tests: FAILED on cpu") and "(budget 5 s)" in summary


@pytest.mark.slow
def test_notebooks_run_under_nbval_each_with_its_verdict(tmp_path):
    """Two notebooks at once, each in its own kernel: one passes, one fails an assert, the run fails."""
    good = _notebook(tmp_path / "good.ipynb", "import os\nx = 2",
                     "assert x == 2\nassert os.environ['SAMWIDGETS_OFFLINE'] == '1'  # what run.sh sets")
    bad = _notebook(tmp_path / "bad.ipynb", "assert 1 == 2, 'planted'")
    result, summary, log = _run(RUN, tmp_path, DEVICE="cpu", TESTS="", NOTEBOOKS=f"{good} {bad}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "notebook-good: passed in " in summary and "2 passed" in summary
    assert "notebook-bad: failed (exit status 1) in " in summary
    assert "planted" in log


def _trainer(tmp_path: Path, status: int) -> Path:
    """A stand-in for recipes/bsds_cnn/device/train.sh: records what it was given, exits with ``status``."""
    stub = tmp_path / "train_stub.sh"
    stub.write_text(f'echo "$TRAIN_SECONDS $OUT" >"$OUT/trainer_called"\necho training\nexit {status}\n')
    return stub


def test_lent_runs_the_tests_then_gives_the_trainer_the_time_left(tmp_path):
    # what run.sh hands the tests: the device (a GPU run that lost it would test the CPU), the offline mode
    (tmp_path / "test_quick.py").write_text("import os\n\ndef test_quick():\n"
                                            "    assert os.environ['SAMWIDGETS_TEST_DEVICE'] == 'cpu'\n"
                                            "    assert os.environ['SAMWIDGETS_OFFLINE'] == '1'\n")
    (tmp_path / "data" / "bsds500").mkdir(parents=True)
    started = time.time()
    result, summary, _ = _run(LENT, tmp_path, DEVICE="cpu", TESTS=str(tmp_path / "test_quick.py"), NOTEBOOKS="",
                              CALL_SECONDS="1000", TRAIN_OVERHEAD="100", DATA=str(tmp_path / "data"),
                              TRAINER=str(_trainer(tmp_path, status=3)))
    elapsed = time.time() - started
    assert result.returncode == 0, result.stdout + result.stderr  # the tests' status, not the trainer's
    seconds, out = (tmp_path / "out" / "trainer_called").read_text().split()
    assert 900 - elapsed - 2 <= int(seconds) <= 900 and out == str(tmp_path / "out")
    lines = summary.splitlines()
    assert lines[0] == "device: cpu" and any(line.startswith("pytest: passed in ") for line in lines)
    assert any(line.startswith("tests: passed on cpu") for line in lines)
    assert f"train: {tmp_path / 'train_stub.sh'} with TRAIN_SECONDS={seconds}" in lines
    assert any(line.startswith("train: FAILED (exit status 3) in ") for line in lines)
    assert lines[-1].startswith("lent.sh: tests exit status 0, ")
    assert (tmp_path / "out" / "train.log").read_text() == "training\n"


def test_lent_skips_the_training_without_its_data_or_time_and_returns_the_tests_status(tmp_path):
    stub = str(_trainer(tmp_path, status=0))
    (tmp_path / "data" / "bsds500").mkdir(parents=True)
    # TESTS and NOTEBOOKS empty: run.sh refuses at once (status 2), which is what lent.sh returns
    result, summary, _ = _run(LENT, tmp_path, TESTS="", NOTEBOOKS="", CALL_SECONDS="150", TRAIN_OVERHEAD="100",
                              DATA=str(tmp_path / "data"), TRAINER=stub)
    assert result.returncode == 2
    assert "tests: not run: TESTS and NOTEBOOKS are both empty" in summary
    assert "train: skipped: " in summary and "under MIN_TRAIN_SECONDS=60" in summary
    result, summary, _ = _run(LENT, tmp_path, TESTS="", NOTEBOOKS="", DATA=str(tmp_path / "nothing"), TRAINER=stub)
    assert result.returncode == 2
    assert "/nothing/bsds500 was not carried" in summary
    assert not (tmp_path / "out" / "trainer_called").exists()
