"""benchmarks/speed_sprites.py builds real-sized inputs and prints the 1-vs-2-workers and peak-RSS
figures (the numbers themselves are measured by running the script, not asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.speed import main
from benchmarks.speed_sprites import sprite_folder
from harmony_eval.imageio import list_images
from harmony_eval.testing.render import render_face

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("sprite_src")
    for i, e in enumerate(["happy", "sad"]):
        render_face(e, e, e, size=200, seed=i).save(d / f"{e}.png")
    Image.new("RGB", (300, 150), "white").save(d / "wide.png")
    return d


def test_sprite_folder_scales_and_repeats(images, tmp_path):
    imgs = sprite_folder(images, 7, 120, tmp_path)
    files = list_images(imgs)
    assert len(files) == 7 and all(f.is_symlink() for f in files)  # repeats cost no disk
    sizes = {f.name.split("_", 1)[1]: Image.open(f).size for f in files}
    assert sizes == {"happy.png": (120, 120), "sad.png": (120, 120), "wide.png": (120, 60)}  # longest side


def test_peak_rss_sees_memory_allocated_in_the_block():
    # in a fresh process: in this long-lived one freed pages stay resident, so a new block may not
    # raise RSS at all (seen in CI: the delta was 0)
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from benchmarks.speed_sprites import PeakRSS\n"
        "with PeakRSS() as m:\n"
        "    before = m.peak_main\n"
        "    block = np.ones(64 * 2**20, np.uint8)\n"
        "    block.sum()\n"
        "print(m.peak_main - before, m.peak_total - m.peak_main)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    grew, extra = (int(v) for v in out.stdout.split())
    assert grew >= 48 * 2**20  # 64 MiB touched
    assert extra >= 0  # the total counts the process itself


@pytest.mark.slow
def test_sprites_mode_prints_both_worker_counts_and_rss(images, capsys):
    args = ["--sprites", "3", "--side", "128", "--rss-at", "4", "--images", str(images), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3 and out["side_px"] == 128
    assert out["workers_1"]["images_per_s"] > 0 and out["workers_2"]["images_per_s"] > 0
    # the ratio is printed to 2 decimals (and the rates rounded too): 0.005 of rounding, plus a margin
    assert out["ratio_2_vs_1"] == pytest.approx(
        out["workers_2"]["images_per_s"] / out["workers_1"]["images_per_s"], rel=0.02, abs=0.01
    )
    assert out["rss_4"]["peak_rss_mb"] >= out["rss_4"]["peak_rss_main_mb"] > 0
