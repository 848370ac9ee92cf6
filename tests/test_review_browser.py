"""Review page in real headless Chromium (Debian's ``chromium`` driven by Playwright; no browser
download): keyboard labelling, reload, Enter, undo, two tabs, and refused requests from the page."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

pytest.importorskip("starlette", reason="the review page needs the review extra (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="the review page needs the review extra (starlette, uvicorn)")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (test extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "chromium is not installed (apt-get install -y chromium; .ci/run does)", allow_module_level=True
    )

from review_support import LiveServer, argmax, copy_run, make_run, read_csv  # noqa: E402

from harmony_eval.review.app import Review, create_app  # noqa: E402
from harmony_eval.review.run import load_run  # noqa: E402

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review_browser"))


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def served(scored, tmp_path, browser):
    """(review, url, open_page): a fresh run folder (no labels) served on a free port."""
    rv = Review(load_run(copy_run(scored, tmp_path / "run")), tmp_path / "run" / "labels.csv")
    contexts = []

    def open_page(context=None):
        if context is None:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        page.goto(url + "/")
        idle(page)
        return page

    with LiveServer(create_app(rv)) as url:
        yield rv, url, open_page
        for c in contexts:
            c.close()


def idle(page) -> None:
    """Wait until every queued action (saves included) has finished and an image is drawn."""
    page.wait_for_selector('body[data-busy="0"]', timeout=10_000)
    page.wait_for_selector("#stage[data-key]:not([data-key=''])", timeout=10_000)


def shown(page) -> str:
    return page.get_attribute("#stage", "data-key")


def keys(page, *names: str) -> None:
    for k in names:
        page.keyboard.press(k)
    idle(page)


def order(rv) -> list[str]:
    return [rv.run.rows[i]["key"] for i in rv.run.order]


def reading(rv, key: str) -> dict[str, str]:
    """The evaluator's reading of ``key``, as Enter accepts it."""
    r = rv.run.row(key)
    reg = r["regions"] or {}
    out = {k: argmax((reg.get(k) or {}).get("probs")) for k in ("eyes", "brows", "mouth")}
    return {"emotion": r["emotion"] or "", **out, "verdict": r["verdict"] or ""}


def csv_rows(rv) -> dict[str, dict[str, str]]:
    rows = read_csv(rv.labels_path) if rv.labels_path.exists() else []
    assert all(STAMP.match(r.pop("labelled_at")) for r in rows)
    return {r.pop("file"): r for r in rows}


def test_label_three_by_keyboard_then_reload_resumes_and_the_csv_is_exact(served):
    rv, url, open_page = served
    page = open_page()
    vocab, want = rv.run.vocab, {}
    assert shown(page) == order(rv)[0]  # starts at the most informative image
    for i in range(3):
        key = shown(page)
        assert key == order(rv)[i]
        # face = 2nd emotion, eyes = 3rd, verdict broken; Enter accepts the evaluator for brows / mouth
        keys(page, "2", "e", "3", "x", "Enter")
        want[key] = {**reading(rv, key), "emotion": vocab[1], "eyes": vocab[2], "verdict": "broken"}
    assert page.inner_text("#progress-text") == "3 / 5 labelled"
    page.reload()
    idle(page)
    assert page.inner_text("#progress-text") == "3 / 5 labelled"
    assert shown(page) == order(rv)[3]  # resumes at the first unlabelled image in ranking order
    assert csv_rows(rv) == want
    lines = rv.labels_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "file,emotion,eyes,brows,mouth,verdict,labelled_at"
    run_order = [r["key"] for r in rv.run.rows]
    assert [ln.split(",")[0] for ln in lines[1:]] == sorted(want, key=run_order.index)
    keys(page, "ArrowLeft")  # the page shows the saved label
    assert page.get_attribute('.field[data-field="eyes"] .opt.chosen', "data-value") == vocab[2]
    assert page.errors == []


def test_enter_accepts_the_evaluators_reading_and_moves_on(served):
    rv, url, open_page = served
    page = open_page()
    first, second = order(rv)[:2]
    keys(page, "Enter")
    assert shown(page) == second
    assert csv_rows(rv) == {first: reading(rv, first)}
    # the dashed "evaluator" marks are the same reading
    keys(page, "ArrowLeft")
    for field, value in reading(rv, first).items():
        if value:
            assert page.get_attribute(f'.field[data-field="{field}"] .opt.evaluator', "data-value") == value


def test_question_mark_shows_the_keys_and_labelling_waits_while_it_is_open(served):
    rv, url, open_page = served
    page = open_page()
    keys(page, "?")
    assert page.is_visible("#help")
    assert "eyes / brows / mouth" in page.inner_text("#help")
    keys(page, "2")  # ignored while the help is open
    assert not rv.labels_path.exists()
    keys(page, "Escape")
    assert not page.is_visible("#help")


def test_filters_narrow_the_view_and_archetypes_come_from_a_manifest(scored, tmp_path, browser):
    run = copy_run(scored, tmp_path / "run")
    rows = load_run(run).rows
    images = scored.parent / "images"
    arche = {r["key"]: ("knight" if i % 2 else "witch") for i, r in enumerate(rows)}
    (run / "manifest.jsonl").write_text(
        "".join(
            json.dumps({"file": os.path.relpath(images / k, run), "archetype": a}) + "\n"
            for k, a in arche.items()
        )
    )
    rv = Review(load_run(run), run / "labels.csv")
    with LiveServer(create_app(rv)) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url + "/")
        idle(page)
        assert page.is_visible("#f-archetype")
        page.select_option("#f-archetype", "knight")
        idle(page)
        seen = set()
        for _ in range(len(rows)):
            seen.add(shown(page))
            keys(page, "ArrowRight")
        assert seen == {k for k, a in arche.items() if a == "knight"}
        page.select_option("#f-archetype", "")
        broken = {r["key"] for r in rows if r["verdict"] == "broken"}
        page.select_option("#f-verdict", "broken")
        idle(page)
        assert page.inner_text("#position").startswith(f"1 / {len(broken)} in this view")
        assert shown(page) in broken
        page.close()


def test_backspace_undoes_changes_one_by_one_across_images(served):
    rv, url, open_page = served
    page = open_page()
    first = shown(page)
    keys(page, "3", "p")
    assert csv_rows(rv)[first] == {
        "emotion": "sad",
        "eyes": "",
        "brows": "",
        "mouth": "",
        "verdict": "perfect",
    }
    keys(page, "Backspace")
    assert csv_rows(rv)[first]["verdict"] == ""  # the verdict went, the emotion stayed
    keys(page, "Backspace")
    assert csv_rows(rv) == {}  # nothing left of the label: its row is gone
    keys(page, "Enter")  # label and move on...
    assert shown(page) != first and first in csv_rows(rv)
    keys(page, "Backspace")  # ...undo brings the page back to that image and removes it
    assert shown(page) == first and csv_rows(rv) == {}
    assert page.inner_text("#progress-text") == "0 / 5 labelled"


def test_two_tabs_labelling_different_images_lose_nothing(served):
    rv, url, open_page = served
    one = open_page()
    two = open_page(one.context)
    keys(two, "ArrowRight", "ArrowRight")  # the second tab works further down the list
    a, b = shown(one), shown(two)
    assert a != b
    keys(one, "1")
    keys(two, "4")
    keys(one, "m", "2", "Enter")
    keys(two, "a", "Enter")
    c, d = shown(one), shown(two)
    keys(one, "x")
    keys(two, "p")
    got = csv_rows(rv)
    assert {k: got[k]["emotion"] for k in (a, b)} == {a: "neutral", b: "angry"}
    assert got[a]["mouth"] == "happy" and got[b]["verdict"] == "acceptable"
    assert got[c]["verdict"] == "broken" and got[d]["verdict"] == "perfect"
    one.reload()
    idle(one)
    assert one.inner_text("#progress-text") == "4 / 5 labelled"  # the other tab's labels are there too


def test_the_page_cannot_change_labels_without_its_token_nor_leave_the_run(served):
    rv, url, open_page = served
    page = open_page()
    key = shown(page)
    status = page.evaluate(
        """async (key) => {
            const body = JSON.stringify({file: key, set: {emotion: "sad"}});
            const h = {"Content-Type": "application/json"};
            const no = await fetch("/api/labels", {method: "POST", headers: h, body});
            const bad = await fetch("/api/labels", {method: "POST", headers: {...h, "X-Review-Token": "x"}, body});
            const up = await fetch("/img/..%2f..%2fetc%2fpasswd");
            return [no.status, bad.status, up.status, (await no.json()).error];
        }""",
        key,
    )
    assert status[:3] == [403, 403, 400] and "X-Review-Token" in status[3]
    assert not rv.labels_path.exists()
