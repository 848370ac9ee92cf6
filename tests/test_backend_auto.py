"""``--backend auto``'s three paths with a fake Hub (no network): local weights -> CLIP; none but the
Hub answers -> one download of the pinned default, then CLIP; offline -> anatomy with one notice."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from harmony_eval.backends import auto, resolve_backend_name

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("torch", "open_clip")),
    reason="auto picks CLIP only where torch and open_clip are installed",
)  # find_spec, not an import: these tests never load a model


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A fake Hub: ``hf_hub_download`` writes the file into a cache folder and records the call;
    CLIP weights count as available once that file exists."""
    import huggingface_hub

    from harmony_eval.backends import clip_weights

    calls: list[dict] = []
    cache = tmp_path / "hub"

    def fake_download(repo_id, filename, *, revision=None, cache_dir=None, **kw):
        calls.append({"repo_id": repo_id, "filename": filename, "revision": revision, "cache_dir": cache_dir})
        f = cache / repo_id.replace("/", "--") / filename
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"weights")
        return str(f)

    def fake_available(**options):
        repo, fname = auto.DEFAULT_CLIP["repo_id"], auto.DEFAULT_CLIP["filename"]
        return (cache / repo.replace("/", "--") / fname).is_file()

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(clip_weights, "clip_weights_available", fake_available)
    monkeypatch.setattr(auto, "hub_unreachable", lambda: "")  # the Hub answers
    monkeypatch.setattr(auto, "_noticed", False)
    for var in ("HARMONY_EVAL_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return calls


def test_local_weights_pick_clip_without_the_hub(hub, monkeypatch, tmp_path):
    from harmony_eval.backends import clip_weights

    monkeypatch.setattr(clip_weights, "clip_weights_available", lambda **o: True)
    monkeypatch.setattr(auto, "hub_unreachable", lambda: pytest.fail("local weights need no network"))
    assert resolve_backend_name("auto", {}) == "clip"
    assert hub == []  # nothing downloaded


def test_reachable_hub_downloads_the_pinned_default_once(hub, tmp_path):
    opts = {"clip_cache_dir": str(tmp_path / "cc")}
    assert resolve_backend_name("auto", opts) == "clip"
    assert hub == [
        {
            "repo_id": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",  # open_clip's file for ViT-B-32 laion2b
            "filename": "open_clip_model.safetensors",
            "revision": auto.DEFAULT_CLIP["revision"],
            "cache_dir": str(tmp_path / "cc"),  # into the cache the user named
        }
    ]
    assert resolve_backend_name("auto", opts) == "clip"
    assert len(hub) == 1  # the second run finds the weights locally


@pytest.mark.parametrize("var", ["HARMONY_EVAL_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_variables_give_anatomy_with_one_notice(hub, monkeypatch, caplog, var):
    monkeypatch.setenv(var, "1")
    monkeypatch.setattr(auto, "hub_unreachable", lambda: pytest.fail("offline means no connection attempt"))
    with caplog.at_level(logging.WARNING, logger="harmony_eval.backends.auto"):
        assert resolve_backend_name("auto", {}) == "anatomy"
        assert resolve_backend_name("auto", {}) == "anatomy"
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1  # one notice per process, however many scorers are built
    msg = notices[0]
    assert var in msg and auto.offline_figure() in msg and "--clip-pretrained" in msg  # why, worth, fix
    assert "accuracy" in auto.offline_figure()  # a measured figure, or where the run states it
    assert hub == []


def test_unreachable_hub_or_failed_download_falls_back(hub, monkeypatch, caplog):
    monkeypatch.setattr(auto, "hub_unreachable", lambda: "huggingface.co cannot be reached (gaierror)")
    with caplog.at_level(logging.WARNING, logger="harmony_eval.backends.auto"):
        assert resolve_backend_name("auto", {}) == "anatomy"
    assert "cannot be reached" in caplog.records[-1].getMessage() and hub == []

    import huggingface_hub

    def broken(*a, **k):
        raise OSError("connection reset")

    monkeypatch.setattr(auto, "hub_unreachable", lambda: "")
    monkeypatch.setattr(auto, "_noticed", False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with caplog.at_level(logging.WARNING, logger="harmony_eval.backends.auto"):
        assert resolve_backend_name("auto", {}) == "anatomy"  # the run goes on offline
    assert "connection reset" in caplog.records[-1].getMessage()


def test_local_checkpoint_missing_is_not_downloaded(hub, tmp_path):
    opts = {"clip_pretrained": str(tmp_path / "mine.safetensors")}  # not the Hub's to supply
    assert auto._hub_file(opts) is None
    assert resolve_backend_name("auto", opts) == "anatomy" and hub == []
