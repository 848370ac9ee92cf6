"""Review page without a browser: label store (atomic CSV, resume, export), API, security, CLI."""

from __future__ import annotations

import errno
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("starlette", reason="the review page needs the review extra (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="the review page needs the review extra (starlette, uvicorn)")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx (test extra)")

from review_support import ROOT, LiveServer, argmax, copy_run, make_run, read_csv  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from harmony_eval.cli import main  # noqa: E402
from harmony_eval.review import store as store_mod  # noqa: E402
from harmony_eval.review.app import Review, create_app  # noqa: E402
from harmony_eval.review.run import load_run  # noqa: E402
from harmony_eval.review.store import COLUMNS, LabelStore, StoreError, label_studio_tasks  # noqa: E402

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
VOCAB = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review"))


@pytest.fixture
def review(scored, tmp_path):
    rv = Review(load_run(copy_run(scored, tmp_path / "run")), tmp_path / "run" / "labels.csv")
    client = TestClient(create_app(rv), base_url="http://127.0.0.1:8765")
    return rv, client


def post(client, rv, body, token=True):
    return client.post("/api/labels", json=body, headers={"X-Review-Token": rv.token} if token else {})


# -- store ---------------------------------------------------------------------------------------
def test_store_writes_the_exact_csv_and_a_new_store_resumes_it(tmp_path):
    s = LabelStore(tmp_path / "labels.csv", ["a.png", "b.png", "c.png"], VOCAB)
    s.update("c.png", {"emotion": "sad", "verdict": "broken"})
    s.update("a.png", {"emotion": "Happy "})  # case and spaces normalised, like calibrate reads them
    s.update("a.png", {"mouth": "happy"})  # merged into a.png's label
    lines = (tmp_path / "labels.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert [ln.rsplit(",", 1)[0] for ln in lines[1:]] == [
        "a.png,happy,,,happy,",
        "c.png,sad,,,,broken",
    ]  # run order
    assert all(STAMP.match(ln.rsplit(",", 1)[1]) for ln in lines[1:])
    again = LabelStore(tmp_path / "labels.csv", ["a.png", "b.png", "c.png"], VOCAB).all()
    assert (
        again["a.png"]["mouth"] == "happy" and again["c.png"]["verdict"] == "broken" and "b.png" not in again
    )
    s.update("c.png", {"emotion": None}, replace=True)  # nothing left: the row goes
    assert [r["file"] for r in read_csv(tmp_path / "labels.csv")] == ["a.png"]
    with pytest.raises(ValueError, match="'joy' is not one of"):
        s.update("a.png", {"emotion": "joy"})
    with pytest.raises(ValueError, match="unknown label field 'nose'"):
        s.update("a.png", {"nose": "happy"})


def test_store_keeps_columns_and_rows_it_does_not_know(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("file,emotion,annotator\nother.png,sad,kim\na.png,happy,lee\n", encoding="utf-8")
    LabelStore(p, ["a.png"], VOCAB).update("a.png", {"verdict": "perfect"})
    rows = read_csv(p)
    assert [(r["file"], r["emotion"], r["verdict"], r["annotator"]) for r in rows] == [
        ("a.png", "happy", "perfect", "lee"),
        ("other.png", "sad", "", "kim"),
    ]
    p.write_text("name,emotion\nx,sad\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no `file` column"):
        LabelStore(p, ["a.png"], VOCAB)


def test_a_failed_write_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    p = tmp_path / "labels.csv"
    s = LabelStore(p, ["a.png", "b.png"], VOCAB)
    s.update("a.png", {"emotion": "sad"})
    before = p.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.os, "fsync", full_disk)
    with pytest.raises(StoreError, match="No space left on device.*not saved"):
        s.update("b.png", {"emotion": "happy"})
    assert p.read_bytes() == before
    assert not list(tmp_path.glob(".labels.csv.*.tmp"))  # the half-written temporary file is gone


def test_threads_and_two_stores_on_one_file_lose_no_label(tmp_path):
    files = [f"{i}.png" for i in range(12)]
    p = tmp_path / "labels.csv"
    one, two = LabelStore(p, files, VOCAB), LabelStore(p, files, VOCAB)  # a second server on the same file

    def label(i: int) -> None:
        (one if i % 2 else two).update(files[i], {"emotion": VOCAB[i % 4], "verdict": "acceptable"})

    threads = [threading.Thread(target=label, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = {r["file"]: r["emotion"] for r in read_csv(p)}
    assert got == {f: VOCAB[i % 4] for i, f in enumerate(files)}


# -- API -----------------------------------------------------------------------------------------
def test_label_api_saves_and_reports_progress(review):
    rv, c = review
    state = c.get("/api/state").json()
    first = state["rows"][state["order"][0]]["key"]
    assert state["progress"] == {"labelled": 0, "total": 5}
    r = post(c, rv, {"file": first, "set": {"emotion": "sad", "verdict": "broken"}})
    assert r.status_code == 200 and r.json()["progress"] == {"labelled": 1, "total": 5}
    (row,) = read_csv(rv.labels_path)
    assert (row["file"], row["emotion"], row["eyes"], row["verdict"]) == (first, "sad", "", "broken")
    assert c.get("/api/state").json()["labels"][first]["emotion"] == "sad"


def test_label_changes_need_the_page_token(review):
    rv, c = review
    key = rv.run.rows[0]["key"]
    assert rv.token in c.get("/").text  # the page carries it
    assert post(c, rv, {"file": key, "set": {"emotion": "sad"}}, token=False).status_code == 403
    r = c.post(
        "/api/labels", json={"file": key, "set": {"emotion": "sad"}}, headers={"X-Review-Token": "guess"}
    )
    assert r.status_code == 403 and "X-Review-Token" in r.json()["error"]
    assert c.post("/api/fit", headers={"X-Review-Token": "guess"}).status_code == 403
    assert not rv.labels_path.exists()  # nothing was written


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"file": "nope.png", "set": {}}).encode(), 404, "not an image of this run"),
        (json.dumps({"file": "KEY", "set": {"emotion": 3}}).encode(), 422, "expected a string"),
        (json.dumps({"file": "KEY", "set": {"eyes": "joy"}}).encode(), 422, "not one of"),
        (json.dumps({"file": "KEY"}).encode(), 422, "exactly one of"),
    ],
)
def test_malformed_requests_get_a_4xx_json_message(review, body, status, says):
    rv, c = review
    body = body.replace(b"KEY", rv.run.rows[0]["key"].encode())
    r = c.post(
        "/api/labels", content=body, headers={"X-Review-Token": rv.token, "Content-Type": "application/json"}
    )
    assert r.status_code == status and says in r.json()["error"]
    assert "Traceback" not in r.text


def test_unknown_routes_methods_and_hosts_get_json_errors(review):
    rv, c = review
    assert c.get("/nope").status_code == 404 and "error" in c.get("/nope").json()
    assert c.put("/api/labels").status_code == 405 and "error" in c.put("/api/labels").json()
    assert c.get("/static/app.py").status_code == 404  # only the page's own three files
    assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    rebound = TestClient(create_app(rv), base_url="http://evil.example:8765")  # DNS rebinding
    assert rebound.get("/api/state").status_code == 400


def test_export_and_labels_csv_are_what_calibrate_reads(review):
    from calibration.labels import read_labels

    rv, c = review
    keys = [r["key"] for r in rv.run.rows]
    post(c, rv, {"file": keys[0], "set": {"emotion": "happy", "eyes": "happy", "verdict": "perfect"}})
    post(c, rv, {"file": keys[1], "set": {"mouth": "sad"}})
    export = c.get("/api/export/labelstudio")
    assert export.status_code == 200 and export.json() == label_studio_tasks(rv.store.all())
    ls = rv.labels_path.with_name("labels.labelstudio.json")
    ls.write_text(export.text, encoding="utf-8")
    from_csv = read_labels(rv.labels_path, rv.run.root, VOCAB)
    from_ls = read_labels(ls, rv.run.root, VOCAB)
    want = [
        (str(rv.run.root / keys[0]), "happy", "happy", None, "perfect"),
        (str(rv.run.root / keys[1]), None, None, "sad", None),
    ]
    for lab in (from_csv, from_ls):
        assert sorted(
            (r["file"], r.get("emotion"), r.get("eyes"), r.get("mouth"), r.get("verdict")) for r in lab.rows
        ) == sorted(want)


@pytest.mark.slow
def test_fit_button_says_why_it_cannot_fit_then_fits_and_lists_changed_verdicts(review):
    rv, c = review
    h = {"X-Review-Token": rv.token}
    assert c.post("/api/fit", headers=h).status_code == 409  # nothing labelled yet
    key0 = rv.run.rows[0]["key"]
    post(c, rv, {"file": key0, "set": {"emotion": "happy"}})  # eyes / brows / mouth never labelled
    assert c.post("/api/fit", headers=h).status_code == 202
    rv.fit.join(120)
    st = c.get("/api/fit").json()
    assert st["state"] == "failed" and "on 1 labelled image(s)" in st["message"], st
    assert "Label more images" in st["message"]
    for r in rv.run.rows:  # label every image: the human disagrees with every verdict "perfect"
        reg = r["regions"] or {}
        set_ = {"emotion": r["target"], "verdict": "broken" if r["verdict"] == "perfect" else r["verdict"]}
        set_.update({k: argmax((reg.get(k) or {}).get("probs")) for k in ("eyes", "brows", "mouth")})
        post(c, rv, {"file": r["key"], "set": set_})
    assert c.post("/api/fit", headers=h).status_code == 202
    rv.fit.join(180)
    st = c.get("/api/fit").json()
    assert st["state"] == "done", st
    assert (rv.run.run_dir / "review_fit" / "calibration.json").is_file()
    rescored = [
        json.loads(ln) for ln in (rv.run.run_dir / "review_fit" / "rescored.jsonl").read_text().splitlines()
    ]
    before = {r["key"]: r["verdict"] for r in rv.run.rows}
    after = {r["key"]: new["verdict"] for r, new in zip(rv.run.rows, rescored, strict=True)}
    assert {ch["key"]: (ch["before"], ch["after"]) for ch in st["changed"]} == {
        k: (before[k], after[k]) for k in before if before[k] != after[k]
    }
    assert f"{len(st['changed'])} verdict(s) change" in st["message"]


# -- security over real HTTP (no client-side path normalisation) ---------------------------------
def raw_get(url: str, path: str) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    try:
        return r.status, json.loads(body)
    except ValueError:
        return r.status, {"raw": body[:80]}


def test_traversal_attempts_are_refused(scored, tmp_path):
    run = copy_run(scored, tmp_path / "run")
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes((scored.parent / "images" / "sad_01.png").read_bytes())
    link = scored.parent / "images" / f"link_{os.getpid()}.png"
    link.symlink_to(secret)  # inside the image folder, pointing out of it
    try:
        rows = [json.loads(ln) for ln in (run / "results.jsonl").read_text().splitlines()]
        rows.append({**rows[0], "path": str(link)})
        (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        rv = Review(load_run(run), run / "labels.csv")
        good = rv.run.rows[0]["key"]
        with LiveServer(create_app(rv)) as url:
            assert raw_get(url, f"/img/{good}")[0] == 200
            for path, status in [
                ("/img/../pyproject.toml", 400),
                ("/img/../../etc/passwd", 400),
                (f"/img/./{good}", 400),
                ("/img/..%2f..%2fetc%2fpasswd", 400),
                ("/img/%2e%2e/results.jsonl", 400),
                ("/img/%2Fetc%2Fpasswd", 400),
                ("/img//etc/passwd", 400),
                ("/img/C:/Windows/win.ini", 400),
                ("/img/results.jsonl", 404),  # a file of the run, but not one of its images
                (f"/img/{link.name}", 403),  # a run image whose real file is outside: not served
                ("/static/../review/app.py", 404),
            ]:
                got, body = raw_get(url, path)
                assert got == status, (path, got, body)
                assert "error" in body, (path, body)
    finally:
        link.unlink()


def test_a_killed_server_loses_no_acknowledged_label_and_leaves_a_whole_file(scored, tmp_path):
    from harmony_eval.review.cli import free_port

    run = copy_run(scored, tmp_path / "run")
    port = free_port()
    cmd = [sys.executable, "-m", "harmony_eval.cli", "review", str(run), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # wait for the port
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                html = conn.getresponse().read().decode()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("review server did not start")
        token = re.search(r'name="review-token" content="([^"]+)"', html).group(1)
        keys = [r["key"] for r in load_run(run).rows]
        acked: dict[str, str] = {}
        in_flight: list[tuple[str, str]] = []

        def flood() -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for i in range(100_000):
                key, emo = keys[i % len(keys)], VOCAB[(i // len(keys)) % 4]
                in_flight[:] = [(key, emo)]
                try:
                    c.request("POST", "/api/labels", json.dumps({"file": key, "set": {"emotion": emo}}),
                              {"X-Review-Token": token, "Content-Type": "application/json"})  # fmt: skip
                    r = c.getresponse()
                    r.read()
                    if r.status == 200:  # the server answers only after the file is replaced
                        acked[key] = emo
                except OSError:
                    return

        t = threading.Thread(target=flood)
        t.start()
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)  # mid-flood: most likely mid-write
        t.join(10)
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) == len(keys)  # every image was labelled at least once before the kill
    lines = (run / "labels.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS)
    got = {r["file"]: r["emotion"] for r in read_csv(run / "labels.csv")}
    late = dict(in_flight)  # the request in flight at the kill may or may not have been written
    assert all(got[k] == v or late.get(k) == got[k] for k, v in acked.items()), (got, acked, late)
    LabelStore(run / "labels.csv", keys, VOCAB)  # a restart clears a torn temporary file, if any
    assert not list(run.glob(".labels.csv.*.tmp"))


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_without_the_review_extra_says_what_to_install(scored, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    assert main(["review", str(scored)]) == 2
    assert 'pip install "harmony-eval[review]"' in capsys.readouterr().err


def test_cli_refuses_bad_runs_and_warns_on_a_non_loopback_host(scored, tmp_path, capsys):
    assert main(["review", str(tmp_path)]) == 2
    assert "no results.jsonl" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["review", str(scored), "--host", "0.0.0.0", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "not a loopback address" in err and f"--port {port}" in err and "pick another" in err


def test_copies_of_one_drawing_are_queued_once_and_labelled_together(tmp_path):
    """A run holding a sprite and the same sprite on white (and its JPEG): the page queues the
    best-ranked of the three, and a label set on it is written for each copy, in one write, so
    calibrate sees the drawing labelled one way (and counts it once)."""
    from PIL import Image

    from harmony_eval.runner import score_folder

    images = tmp_path / "images"
    images.mkdir()
    sprite = ROOT / "tests" / "fixtures" / "permissive" / "renpy_eileen_happy.png"
    other = ROOT / "tests" / "fixtures" / "permissive" / "renpy_eileen_concerned.png"
    shutil.copy(sprite, images / "eileen_happy.png")
    shutil.copy(other, images / "eileen_concerned.png")
    rgba = Image.open(sprite).convert("RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.split()[3])
    white.save(images / "eileen_happy_white.png")
    white.save(images / "eileen_happy_white.jpg", quality=90)
    score_folder(str(images), tmp_path / "run", backend="anatomy", workers=1, progress=False, report=False)
    run = load_run(tmp_path / "run")
    trio = {"eileen_happy.png", "eileen_happy_white.png", "eileen_happy_white.jpg"}
    assert set(run.copies) == trio and all(set(v) | {k} == trio for k, v in run.copies.items())
    queued = [run.rows[i]["key"] for i in run.order]
    assert len(queued) == 2 and "eileen_concerned.png" in queued and len(trio & set(queued)) == 1
    rv = Review(run, tmp_path / "run" / "labels.csv")
    c = TestClient(create_app(rv), base_url="http://127.0.0.1:8765")
    (shown,) = trio & set(queued)
    r = post(c, rv, {"file": shown, "set": {"emotion": "happy"}})
    assert r.status_code == 200 and r.json()["progress"] == {"labelled": 3, "total": 4}
    assert {row["file"]: row["emotion"] for row in read_csv(rv.labels_path)} == dict.fromkeys(trio, "happy")
    r = post(c, rv, {"file": shown, "replace": {}})  # cleared: the copies' labels go with it
    assert r.status_code == 200 and read_csv(rv.labels_path) == []
