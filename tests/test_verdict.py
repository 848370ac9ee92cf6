"""Verdict rules: the checklist, broken flags, the reason sentence, config loading errors."""

import pytest

from harmony_eval.verdict import VerdictConfig, compute_flags, decide, reason

CFG = VerdictConfig.load()
E = ["neutral", "happy", "sad", "angry"]


def dist(e, p=0.85):
    return {k: (p if k == e else (1 - p) / 3) for k in E}


def flags_for(region_probs, holistic, scores, *, target=None, quality=None, areas=(10000,)):
    return compute_flags(
        n_faces=len(areas),
        face_areas=list(areas),
        region_probs=region_probs,
        holistic=holistic,
        scores=scores,
        quality=quality or {"sharpness": 0.9, "eyes_visible": 1, "mouth_visible": 1},
        target=target,
        config=CFG,
    )


def test_coherent_face_is_perfect():
    rp = {"eyes": dist("happy"), "brows": dist("happy"), "mouth": dist("happy")}
    scores = {"eyes_mouth": 0.8, "brows_tension": 0.8, "coherence": 0.85, "target_match": 0.9}
    flags = flags_for(rp, dist("happy", 0.9), scores, target="happy")
    verdict, failed = decide(scores, 0.82, flags, CFG)
    assert (verdict, failed, flags) == ("perfect", [], [])
    assert "agree on happy" in reason(
        verdict, flags, failed, rp, dist("happy", 0.9), scores, "happy", 1, 0.82
    )


def test_two_failed_checks_are_broken_and_reason_names_the_clash():
    rp = {"eyes": dist("happy"), "brows": dist("angry"), "mouth": dist("happy", 0.81)}
    scores = {"eyes_mouth": 0.3, "brows_tension": 0.1, "coherence": 0.7, "target_match": None}
    flags = flags_for(rp, dist("happy", 0.7), scores)
    verdict, failed = decide(scores, 0.45, flags, CFG)
    assert verdict == "broken" and set(failed) == {"eyes_mouth", "brows_tension"}
    text = reason(verdict, flags, failed, rp, dist("happy", 0.7), scores, None, 1, 0.45)
    assert text == "mouth reads happy (0.81) but brows read angry (0.85)"  # worst check first


def test_a_bare_pass_is_only_acceptable():
    scores = {
        "eyes_mouth": 0.9,
        "brows_tension": CFG.thresholds["checks"]["brows_tension"] + 0.01,
        "coherence": 0.9,
    }
    assert decide(scores, 0.85, [], CFG) == ("acceptable", [])  # brows barely fit the rest of the face


def test_one_failed_check_is_acceptable():
    rp = {"eyes": dist("happy"), "brows": dist("neutral"), "mouth": dist("happy")}
    scores = {"eyes_mouth": 0.8, "brows_tension": 0.4, "coherence": 0.7, "target_match": None}
    verdict, failed = decide(scores, 0.66, flags_for(rp, dist("happy"), scores), CFG)
    assert (verdict, failed) == ("acceptable", ["brows_tension"])


def test_acceptable_reason_names_the_weakest_link():
    rp = {"eyes": dist("happy"), "brows": dist("happy"), "mouth": dist("happy")}
    scores = {"eyes_mouth": 0.9, "brows_tension": 0.6, "coherence": 0.8, "target_match": None}
    verdict, failed = decide(scores, 0.78, [], CFG)
    text = reason(verdict, [], failed, rp, dist("happy"), scores, None, 1, 0.78)
    assert verdict == "acceptable" and text.endswith("weakest link brows vs tension 0.60)")


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"areas": (10000, 9000)}, "multiple_faces"),
        ({"quality": {"sharpness": 0.05, "eyes_visible": 1, "mouth_visible": 1}}, "blurry"),
        ({"quality": {"sharpness": 0.9, "eyes_visible": 1, "mouth_visible": 0.0}}, "missing_mouth"),
        ({"target": "angry"}, "wrong_emotion"),
    ],
)
def test_seed_failures_are_broken(kwargs, flag):
    rp = {"eyes": dist("neutral"), "brows": dist("neutral"), "mouth": dist("neutral")}
    scores = {"eyes_mouth": 0.9, "brows_tension": 0.9, "coherence": 0.9, "target_match": None}
    flags = flags_for(rp, dist("neutral", 0.9), scores, **kwargs)
    assert flag in flags
    assert decide(scores, 0.9, flags, CFG)[0] == "broken"


def test_small_second_face_is_not_a_collage():
    rp = {"eyes": dist("happy"), "brows": dist("happy"), "mouth": dist("happy")}
    assert "multiple_faces" not in flags_for(rp, dist("happy"), {}, areas=(10000, 500))


def test_no_face_short_circuits():
    assert compute_flags(
        n_faces=0,
        face_areas=[],
        region_probs={},
        holistic=None,
        scores={},
        quality={},
        target=None,
        config=CFG,
    ) == ["no_face"]


def test_missing_region_reading_flags_it():
    rp = {"eyes": None, "brows": dist("happy"), "mouth": dist("happy")}
    assert "missing_eyes" in flags_for(rp, dist("happy"), {})


def test_threshold_override_merges_checks():
    c = CFG.with_thresholds({"checks": {"coherence": 0.9}, "perfect_harmony": 0.95})
    assert c.thresholds["checks"]["coherence"] == 0.9
    assert c.thresholds["checks"]["eyes_mouth"] == CFG.thresholds["checks"]["eyes_mouth"]
    assert c.thresholds["perfect_harmony"] == 0.95 and CFG.thresholds["perfect_harmony"] != 0.95


def test_config_errors_name_file_and_problem(tmp_path):
    bad = tmp_path / "v.yaml"
    bad.write_text("compatibility: {}\n")
    with pytest.raises(ValueError, match=r"v\.yaml.*missing section"):
        VerdictConfig.load(bad)
    bad.write_text(
        "compatibility: {}\npool_weights: {}\nharmony_weights: {}\nthresholds: {}\nbroken_flags: [ugly]\n"
    )
    with pytest.raises(ValueError, match="ugly"):
        VerdictConfig.load(bad)


def test_a_small_face_is_flagged_never_perfect_and_says_why():
    rp = {"eyes": dist("happy"), "brows": dist("happy"), "mouth": dist("happy")}
    scores = {"eyes_mouth": 0.8, "brows_tension": 0.8, "coherence": 0.85, "target_match": 0.9}
    line = CFG.thresholds["small_face_px"]

    def verdict_at(width, cfg=CFG):
        flags = compute_flags(
            n_faces=1, face_areas=[width * width], region_probs=rp, holistic=dist("happy", 0.9),
            scores=scores, quality={"sharpness": 0.9, "eyes_visible": 1, "mouth_visible": 1},
            target="happy", config=cfg, face_width=width,
        )  # fmt: skip
        return flags, decide(scores, 0.82, flags, cfg)[0]

    assert verdict_at(line) == ([], "perfect")
    flags, verdict = verdict_at(line - 1)
    assert (flags, verdict) == (["small_face"], "acceptable")  # a warning, not a failure
    text = reason(verdict, flags, [], rp, dist("happy", 0.9), scores, "happy", 1, 0.82)
    assert text.startswith("face too small to read reliably; it reads happy (0.90)")
    old = VerdictConfig(
        **{**CFG.__dict__, "thresholds": {k: v for k, v in CFG.thresholds.items() if k != "small_face_px"}}
    )
    assert verdict_at(line - 1, old) == ([], "perfect")  # verdict.yaml copies from before the flag


def test_the_pipeline_flags_a_face_drawn_small(tmp_path):
    from PIL import Image

    import harmony_eval
    from harmony_eval.testing.render import render_face_info

    img, info = render_face_info("happy", "happy", "happy", size=512, seed=1)
    fw = info["face"][2] - info["face"][0]
    big = tmp_path / "big.png"
    small = tmp_path / "small.png"
    img.save(big)
    s = 0.75 * CFG.thresholds["small_face_px"] / fw  # the same drawing with a 60 px face, on a tall
    face = img.resize((round(512 * s), round(512 * s)))  # white canvas: a full-body sprite's share
    canvas = Image.new("RGB", (2 * face.width, 3 * face.height), (255, 255, 255))
    canvas.paste(face, (face.width // 2, 0))
    canvas.save(small)
    df = harmony_eval.score([str(big), str(small)], backend="anatomy")
    rows = {r["path"]: r for r in df.to_dict("records")}
    assert rows[str(big)]["status"] == rows[str(small)]["status"] == "ok"
    assert "small_face" not in rows[str(big)]["flags"]
    assert "small_face" in rows[str(small)]["flags"]
    assert rows[str(small)]["verdict"] != "perfect"
