"""Backend options are checked where the backend is built: a key the backend does not know raises
``TypeError`` naming it and the valid ones, whichever way it arrives (``get_backend``, the raters, a
direct call). The tagger backend used to check only ``tagger_*`` keys and drop every other one
unseen, so ``get_backend("tagger", crops="regions")`` read face crops without a word."""

from __future__ import annotations

import pytest

from harmony_eval.backends import get_backend
from harmony_eval.backends.tagger import _OPTIONS, TaggerBackend


def test_misspelt_tagger_option_is_named_with_a_close_match_and_the_valid_ones() -> None:
    with pytest.raises(
        TypeError, match=r"unknown tagger option 'tagger_modle' \(did you mean 'tagger_model'\?\)"
    ) as e:
        TaggerBackend(tagger_modle="x")
    assert all(k in str(e.value) for k in _OPTIONS)  # every valid key listed


@pytest.mark.parametrize("key", ["crops", "clip_model", "anatomy_params", "margin"])
def test_a_key_without_the_tagger_prefix_is_refused_not_dropped(key: str) -> None:
    with pytest.raises(TypeError, match=f"unknown tagger option '{key}'"):
        get_backend("tagger", **{key: "x"})


def test_the_raters_pass_the_tagger_only_its_own_keys_and_it_checks_them() -> None:
    # the anatomy rater's options do not reach the tagger (no TypeError for them) ...
    with pytest.raises(TypeError, match="'tagger_crop'"):  # ... but a misspelt tagger key does
        get_backend("raters", raters="anatomy,tagger", anatomy_params=None, tagger_crop="regions")


@pytest.mark.parametrize("key", ["bogus", "clip_model", "margin"])
def test_the_raters_refuse_a_key_no_rater_reads(key: str) -> None:
    # 'clip_model' with raters anatomy,tagger: no rater would read it, so it must not be dropped
    with pytest.raises(TypeError, match=f"unknown option '{key}' for raters anatomy,tagger"):
        get_backend("raters", raters="anatomy,tagger", **{key: "x"})


def test_the_raters_pass_their_own_prefixed_keys_on() -> None:
    from harmony_eval.backends.tagger_model import TaggerModelError

    # past the key check: the tagger itself gets tagger_model and says the file is missing
    with pytest.raises(TaggerModelError, match="no-such-tagger"):
        get_backend("raters", raters="anatomy,tagger", tagger_model="/no-such-tagger", anatomy_params=None)
