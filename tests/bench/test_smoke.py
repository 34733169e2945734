"""The benchmark suite's CI smoke: `python -m bench --smoke` runs every figure on tiny clips, with real
servers (embedded and distributed), and reports a finite number in every row. Targets are not asserted
here: they are the full run's business (docs/benchmarks.md)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = set(range(1, 11))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(folder / "benchmarks.md"),
                           "--json", str(folder / "results.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"stdout": done.stdout,
            "markdown": (folder / "benchmarks.md").read_text(),
            "results": json.loads((folder / "results.json").read_text())}


def test_the_smoke_run_reports_every_figure(smoke: dict) -> None:
    assert {row["figure"] for row in smoke["results"]["rows"]} == FIGURES


def test_every_row_has_a_finite_value_reference_and_ratio(smoke: dict) -> None:
    for row in smoke["results"]["rows"]:
        if row["skipped"]:  # figure 9 without gifski (scripts/bench.sh installs it; CI does not need it)
            assert row["figure"] == 9 and row["note"].startswith("skipped: gifski not found"), row
            continue
        for key in ("value", "reference", "ratio", "load"):
            assert isinstance(row[key], int | float) and math.isfinite(row[key]), (row["name"], key, row[key])


def test_rows_with_a_target_say_whether_it_was_met(smoke: dict) -> None:
    targeted = [row for row in smoke["results"]["rows"] if row["target"]]
    assert {row["figure"] for row in targeted} == FIGURES - {7, 8}
    assert all(isinstance(row["met"], bool) for row in targeted if not row["skipped"])


def test_the_printed_table_and_the_markdown_hold_a_row_per_figure(smoke: dict) -> None:
    for text in (smoke["stdout"], smoke["markdown"]):
        assert "| # | figure | value | reference | ratio | target | met | load 1m | notes |" in text
        for figure in FIGURES:
            assert f"\n| {figure} | " in text
        assert "nan" not in text.split("| # | figure")[1].split("\n\n")[0]


def test_the_gifski_figure_compares_every_clip_or_says_it_was_skipped(smoke: dict) -> None:
    rows = [row for row in smoke["results"]["rows"] if row["figure"] == 9]
    if rows[0]["skipped"]:
        assert len(rows) == 1 and not smoke["results"]["gifski"]
        assert "gifski not found" in smoke["markdown"]
        return
    clips = {"testsrc2", "mandelbrot", "life", "cellauto", "grain", "screen", "cuts", "phone", "cartoon", "pan"}
    assert {row["name"].split(", ")[1] for row in rows} == clips
    settings = {(item["source"], item["setting"].split()[0]) for item in smoke["results"]["gifski"]}
    assert settings == {(clip, tool) for clip in clips for tool in ("gifski", "transmute", "ffmpeg")}
    assert all(0 < item["ssim"] <= 1 and item["kib"] > 0 for item in smoke["results"]["gifski"])
    assert "| clip | setting | size KiB | SSIM | SSIM, faithful rgb24 | time s | notes |" in smoke["markdown"]
    verdicts = smoke["markdown"].split("| target | target, extraction counted |\n|---|")[1].split("\n\n")[0]
    rows = [line.split(" | ") for line in verdicts.splitlines()[1:]]
    assert sorted(row[0].removeprefix("| ") for row in rows) == sorted(clips)
    assert all(row[-2].startswith(("met", "missed (")) and row[-1].startswith(("met", "missed (")) for row in rows)


def test_the_markdown_names_the_machine_and_its_load(smoke: dict) -> None:
    assert "CPUs" in smoke["markdown"] and "Load average" in smoke["markdown"]


def test_the_smoke_runs_at_the_small_scale_within_its_deadline(smoke: dict) -> None:
    # Its duration depends on the machine; what keeps it short is its scale (tiny clips, 1 s of wrk), and
    # the fixture's timeout (240 s) bounds it.
    assert smoke["results"]["scale"] == "smoke"
