// harmony-eval review page. Plain JS, no build step, no external resource.
// Every action runs through one queue, so a key pressed while a save is in flight sees the saved
// state, and the page never moves on before the server has written the label.
"use strict";

const TOKEN = document.querySelector('meta[name="review-token"]').content;
const FIELDS = ["emotion", "eyes", "brows", "mouth", "verdict"];
const REGION_KEYS = { e: "eyes", b: "brows", m: "mouth" };
const VERDICT_KEYS = { p: "perfect", a: "acceptable", x: "broken" };
const COLOURS = { neutral: "#8d99a6", happy: "#f0a202", sad: "#3a7bd5", angry: "#e03e36", surprised: "#9b5de5" };
const EXTRA = ["#17becf", "#8c564b", "#e377c2", "#bcbd22", "#2ca02c", "#7f7f7f"];
const VERDICT_COLOURS = { perfect: "#2e9d5b", acceptable: "#d99a1e", broken: "#d64541" };
const SVGNS = "http://www.w3.org/2000/svg";
const STRIP = 14;

const S = { data: null, rows: [], byKey: new Map(), view: [], pos: 0, undo: [], pending: null,
            filters: {}, zoom: true, sizes: new Map(), busy: 0 };
let chain = Promise.resolve();

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...kids) {
  const n = tag.startsWith("svg:") ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") n.textContent = v;
    else if (k === "style") n.style.cssText = v; // CSSOM, which the page's CSP allows (attributes it blocks)
    else if (k === "on") for (const [ev, f] of Object.entries(v)) n.addEventListener(ev, f);
    else n.setAttribute(k, v);
  }
  for (const c of kids) if (c) n.append(c);
  return n;
}
function colour(e) {
  if (!e) return "#b0b5bb";
  if (COLOURS[e]) return COLOURS[e];
  let h = 0;
  for (const ch of e) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length];
}
function topOf(p) {
  if (!p || typeof p !== "object") return null;
  let best = null;
  for (const [k, v] of Object.entries(p)) if (typeof v === "number" && (!best || v > best[1])) best = [k, v];
  return best;
}
const fmt = (x, d = 2) => (typeof x === "number" ? x.toFixed(d) : "–");

function toast(msg, bad = false) {
  const t = $("toast");
  t.textContent = msg;
  t.className = bad ? "show bad" : "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ""), bad ? 6000 : 1800);
}

function enqueue(fn) {
  S.busy++;
  document.body.dataset.busy = "1";
  chain = chain.then(fn).catch((e) => toast(e.message || String(e), true)).finally(() => {
    if (--S.busy === 0) document.body.dataset.busy = "0";
  });
  return chain;
}

async function api(method, url, body) {
  const opts = { method, headers: { "X-Review-Token": TOKEN } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, opts);
  } catch (e) {
    throw new Error("server unreachable: not saved (" + e.message + ")");
  }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

// ---------------------------------------------------------------------------------- data & view
async function load(keepKey) {
  const d = await api("GET", "/api/state");
  S.data = d;
  S.rows = d.rows;
  S.byKey = new Map(d.rows.map((r, i) => [r.key, i]));
  $("run-name").textContent = d.run;
  $("files").textContent = `labels → ${d.labels_file} · images: ${d.root}` +
    (d.skipped.length ? ` · ${d.skipped.length} row(s) not shown (error or image missing)` : "");
  buildFilters();
  computeView();
  const at = keepKey ? S.view.indexOf(S.byKey.get(keepKey)) : -1;
  S.pos = at >= 0 ? at : firstUnlabelled();
  render();
  if (d.fit && d.fit.state !== "idle") showFit(d.fit);
}

function labelOf(row) {
  return S.data.labels[row.key] || null;
}
function firstUnlabelled() {
  const i = S.view.findIndex((ri) => !labelOf(S.rows[ri]));
  return i >= 0 ? i : 0;
}
function current() {
  return S.view.length ? S.rows[S.view[S.pos]] : null;
}

function buildFilters() {
  const vals = { verdict: new Set(), flag: new Set(), target: new Set(), archetype: new Set() };
  for (const r of S.rows) {
    if (r.verdict) vals.verdict.add(r.verdict);
    for (const f of r.flags || []) vals.flag.add(f);
    vals.target.add(r.target || "(none)");
    if (r.archetype) vals.archetype.add(r.archetype);
  }
  $("f-archetype-wrap").hidden = !S.data.has_archetypes;
  for (const [field, set] of Object.entries(vals)) {
    const sel = $("f-" + field);
    const keep = S.filters[field] || "";
    sel.replaceChildren(el("option", { value: "", text: "all" }));
    for (const v of [...set].sort()) sel.append(el("option", { value: v, text: v, selected: v === keep ? "" : null }));
    if (field === "flag") sel.append(el("option", { value: "(none)", text: "(no flag)", selected: keep === "(none)" ? "" : null }));
  }
}

function matches(r) {
  const f = S.filters;
  if (f.verdict && r.verdict !== f.verdict) return false;
  if (f.flag && (f.flag === "(none)" ? (r.flags || []).length : !(r.flags || []).includes(f.flag))) return false;
  if (f.target && (r.target || "(none)") !== f.target) return false;
  if (f.archetype && r.archetype !== f.archetype) return false;
  return true;
}
function computeView() {
  S.view = S.data.order.filter((i) => matches(S.rows[i]));
}

function evaluatorReading(r) {
  const reg = r.regions || {};
  const out = { emotion: r.emotion || null, verdict: r.verdict || null };
  for (const k of ["eyes", "brows", "mouth"]) out[k] = (topOf((reg[k] || {}).probs) || [null])[0];
  return out;
}

// ---------------------------------------------------------------------------------- actions
async function save(row, body) {
  const res = await api("POST", "/api/labels", { file: row.key, ...body });
  if (res.label) S.data.labels[row.key] = res.label;
  else delete S.data.labels[row.key];
  S.data.progress = res.progress;
}

async function change(field, value) {
  const row = current();
  if (!row) return;
  const before = labelOf(row);
  if (before && before[field] === value) return;
  await save(row, { set: { [field]: value } });
  S.undo.push({ key: row.key, before });
  render();
}

async function accept() {
  const row = current();
  if (!row) return;
  const before = labelOf(row);
  const reading = evaluatorReading(row);
  const set = {};
  for (const f of FIELDS) if (!(before && before[f]) && reading[f]) set[f] = reading[f];
  if (Object.keys(set).length) {
    await save(row, { set });
    S.undo.push({ key: row.key, before });
  }
  if (S.pos === S.view.length - 1) {
    const left = S.view.filter((i) => !labelOf(S.rows[i])).length;
    toast(left ? `end of this view; ${left} unlabelled above` : "every image of this view is labelled");
  }
  move(1);
}

async function undo() {
  const last = S.undo.pop();
  if (!last) return toast("nothing to undo");
  const row = S.rows[S.byKey.get(last.key)];
  const rec = {};
  for (const f of FIELDS) rec[f] = last.before ? last.before[f] : null;
  try {
    await save(row, { replace: rec });
  } catch (e) {
    S.undo.push(last);
    throw e;
  }
  const at = S.view.indexOf(S.byKey.get(last.key));
  if (at >= 0) S.pos = at;
  render();
  toast("undone: " + last.key);
}

function move(d) {
  if (!S.view.length) return;
  S.pos = Math.max(0, Math.min(S.view.length - 1, S.pos + d));
  render();
}
function goTo(key) {
  let at = S.view.indexOf(S.byKey.get(key));
  if (at < 0) { // not in the filtered view: clear the filters to show it
    S.filters = {};
    buildFilters();
    computeView();
    at = S.view.indexOf(S.byKey.get(key));
  }
  if (at >= 0) S.pos = at;
  render();
}

// ---------------------------------------------------------------------------------- keys
function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.target && ["SELECT", "INPUT", "TEXTAREA"].includes(ev.target.tagName)) return;
  const k = ev.key;
  const help = !$("help").hidden;
  if (k === "?" || (k === "Escape" && help)) {
    ev.preventDefault();
    $("help").hidden = help; // shown -> hide, hidden -> show
    return;
  }
  if (help) return;
  const vocab = S.data ? S.data.vocab : [];
  const pending = S.pending;
  S.pending = null; // any key ends a region prefix; a digit right after it sets that region
  let action = null;
  if (/^[1-9]$/.test(k)) {
    const e = vocab[Number(k) - 1];
    if (e) action = () => change(pending || "emotion", e);
  } else if (REGION_KEYS[k]) S.pending = REGION_KEYS[k];
  else if (VERDICT_KEYS[k]) action = () => change("verdict", VERDICT_KEYS[k]);
  else if (k === "Enter") action = accept;
  else if (k === "Backspace") action = undo;
  else if (k === "ArrowRight" || k === "ArrowDown") action = () => move(1);
  else if (k === "ArrowLeft" || k === "ArrowUp") action = () => move(-1);
  else if (k === "z") action = () => { S.zoom = !S.zoom; render(); };
  else if (k !== "Escape") {
    S.pending = pending; // an unrelated key (Shift...) keeps the prefix
    return;
  }
  ev.preventDefault();
  showPending();
  if (action) enqueue(action);
}

function showPending() {
  const p = $("pending");
  p.hidden = !S.pending;
  if (S.pending) p.textContent = `${S.pending}: press 1–${Math.min(9, S.data.vocab.length)}`;
  for (const f of document.querySelectorAll(".field")) f.classList.toggle("pending", f.dataset.field === S.pending);
}

// ---------------------------------------------------------------------------------- drawing
function imageSize(key) {
  if (S.sizes.has(key)) return Promise.resolve(S.sizes.get(key));
  return new Promise((resolve) => {
    const im = new Image();
    im.onload = () => { const s = [im.naturalWidth, im.naturalHeight]; S.sizes.set(key, s); resolve(s); };
    im.onerror = () => resolve(null);
    im.src = imgUrl(key);
  });
}
const imgUrl = (key) => "/img/" + key.split("/").map(encodeURIComponent).join("/");

function faceCrop(r, W, H, margin) {
  const b = ((r.regions || {}).face || {}).box;
  if (!b) return null;
  const fw = b[2] - b[0], fh = b[3] - b[1], m = margin * Math.max(fw, fh);
  const x0 = Math.max(0, b[0] - m), y0 = Math.max(0, b[1] - m);
  const x1 = W ? Math.min(W, b[2] + m) : b[2] + m, y1 = H ? Math.min(H, b[3] + m) : b[3] + m;
  return [x0, y0, x1 - x0, y1 - y0];
}

function drawBoxes(svg, r, vb) {
  const reg = r.regions || {};
  const unit = Math.max(vb[2], vb[3]);
  const stroke = unit / 260;
  const items = [];
  const eyes2 = (reg.left_eye || {}).box || (reg.right_eye || {}).box;
  for (const name of ["face", "brows", "left_eye", "right_eye", "eyes", "mouth"]) {
    const g = reg[name] || {};
    if (!Array.isArray(g.box) || g.box.length !== 4) continue;
    if (name === "eyes" && eyes2) continue;
    const region = name.endsWith("eye") ? "eyes" : name;
    const probs = name === "face" ? g.probs || r.probs : g.probs || (reg.eyes || {}).probs;
    const t = topOf(probs);
    // one label for both eyes, with the eyes reading the verdict used (each eye box keeps its colour)
    const said = region === "eyes" ? topOf((reg.eyes || {}).probs) || t : t;
    const label = name === "right_eye" && (reg.left_eye || {}).box ? "" : `${region}: ${said ? said[0] + " " + fmt(said[1]) : "n/a"}`;
    items.push({ box: g.box, col: colour(t && t[0]), tagCol: colour(said && said[0]), label, name });
  }
  for (const it of items) {
    const [x0, y0, x1, y1] = it.box;
    svg.append(el("svg:rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: it.col,
      "stroke-width": it.name === "face" ? stroke * 1.4 : stroke, class: "box " + it.name }));
  }
  return items;
}

// Region labels after the SVG is in the page (text is measured). Region labels sit beside the face
// box, level with their region and joined to it by a line, so no label hides the eyes or mouth being
// judged; where the margin is too narrow a label goes above / below its box instead. No two overlap.
function placeTags(svg, items, vb) {
  const unit = Math.max(vb[2], vb[3]), font = unit / 34, pad = font * 0.25, gap = font * 0.6;
  const placed = [];
  const hits = (r) => placed.some((q) => r.x < q.x + q.w && q.x < r.x + r.w && r.y < q.y + q.h && q.y < r.y + r.h);
  // what is visible: the viewBox widened (or heightened) to the element's shape, as "meet" shows it
  const px = svg.getBoundingClientRect();
  const scale = px.width && px.height ? Math.min(px.width / vb[2], px.height / vb[3]) : 1;
  const vw = px.width ? px.width / scale : vb[2], vh = px.height ? px.height / scale : vb[3];
  const vis = [vb[0] - (vw - vb[2]) / 2, vb[1] - (vh - vb[3]) / 2, vw, vh];
  const inView = (r) => r.x >= vis[0] && r.y >= vis[1] && r.x + r.w <= vis[0] + vis[2] && r.y + r.h <= vis[1] + vis[3];
  const face = items.find((it) => it.name === "face");
  const fb = face ? face.box : null;
  for (const it of [...items].sort((p, q) => (p.name === "face") - (q.name === "face") || p.box[1] - q.box[1])) {
    if (!it.label) continue;
    const text = el("svg:text", { fill: "#fff", "font-size": font, class: "tag", text: it.label });
    svg.append(text);
    const w = text.getComputedTextLength() + 2 * pad, h = font * 1.3;
    const [x0, y0, x1, y1] = it.box;
    const cands = [];
    if (fb && it.name !== "face") {
      const mid = (y0 + y1) / 2 - h / 2;
      const left = { x: fb[0] - gap - w, side: "left" }, right = { x: fb[2] + gap, side: "right" };
      const sides = fb[0] - vb[0] >= vb[0] + vb[2] - fb[2] ? [left, right] : [right, left];
      for (const sd of sides) for (let k = 0; k < 8; k++) cands.push({ x: sd.x, y: mid + k * h * 1.1, w, h, side: sd.side });
    }
    const x = Math.max(vb[0] + 1, Math.min(x0, vb[0] + vb[2] - w - 1));
    // the face's own label goes under the chin first: above the face box it would cover the brows
    const ys = it.name === "face" ? [y1 + 1, y0 - h - 1, y1 - h - 1] : [y0 - h - 1, y1 + 1, y0 + 1, y1 - h - 1];
    for (const y of ys) cands.push({ x, y, w, h });
    const spot = cands.find((c) => inView(c) && !hits(c)) || cands.find(inView) || { x, y: y0, w, h };
    placed.push(spot);
    if (spot.side) { // leader line from the label to its region box
      const lx = spot.side === "left" ? spot.x + w : spot.x, bx = spot.side === "left" ? x0 : x1;
      svg.insertBefore(el("svg:line", { x1: lx, y1: spot.y + h / 2, x2: bx, y2: Math.min(Math.max(spot.y + h / 2, y0), y1),
        stroke: it.tagCol, "stroke-width": font / 10, class: "leader" }), text);
    }
    text.setAttribute("x", spot.x + pad);
    text.setAttribute("y", spot.y + font * 1.0);
    svg.insertBefore(el("svg:rect", { x: spot.x, y: spot.y, width: w, height: h, rx: font * 0.2, fill: it.tagCol,
      "fill-opacity": 0.92, stroke: "rgba(0,0,0,0.35)", "stroke-width": font / 20, class: "tag" }), text);
  }
}

let renderToken = 0;
async function renderStage(r) {
  const view = $("view");
  const mine = ++renderToken;
  if (!r) {
    view.replaceChildren(el("div", { class: "empty", text: S.rows.length ? "No image matches these filters." : "Nothing to review." }));
    $("stage").dataset.key = "";
    return;
  }
  $("stage").dataset.key = r.key;
  const size = await imageSize(r.key);
  if (mine !== renderToken) return; // another image was asked for meanwhile
  if (!size) {
    view.replaceChildren(el("div", { class: "empty", text: "image could not be loaded: " + r.key }));
    return;
  }
  const [W, H] = size;
  const fb = ((r.regions || {}).face || {}).box;
  const small = fb && (fb[2] - fb[0]) * (fb[3] - fb[1]) < 0.06 * W * H; // a full-body sprite's face
  const vb = S.zoom && small ? faceCrop(r, W, H, 0.8) : [0, 0, W, H];
  const svg = el("svg:svg", { viewBox: vb.join(" "), preserveAspectRatio: "xMidYMid meet", class: "view-svg",
    "data-key": r.key, role: "img", "aria-label": r.key });
  svg.append(el("svg:rect", { x: 0, y: 0, width: W, height: H, class: "paper" }));
  svg.append(el("svg:image", { href: imgUrl(r.key), x: 0, y: 0, width: W, height: H }));
  const items = drawBoxes(svg, r, vb);
  view.replaceChildren(svg);
  placeTags(svg, items, vb);
  if (small && S.zoom) view.append(el("div", { class: "zoom-note", text: "zoomed on the face · z: whole image" }));
}

function chip(text, cls) {
  return el("span", { class: "chip " + (cls || ""), text });
}

function renderReading(r) {
  const box = $("reading");
  if (!r) return box.replaceChildren();
  const t = r.probs ? topOf(r.probs) : null;
  const sc = r.scores || {};
  const checks = [["eyes ↔ mouth", sc.eyes_mouth], ["brows ↔ tension", sc.brows_tension],
    ["coherence", sc.coherence], ["target match", sc.target_match]];
  const bars = el("div", { class: "checks" });
  for (const [name, v] of checks) {
    bars.append(el("div", { class: "check" }, el("span", { class: "cname", text: name }),
      el("span", { class: "cbar" }, typeof v === "number" ? el("span", { class: "cfill", style: `width:${Math.round(v * 100)}%` }) : null),
      el("span", { class: "cval", text: fmt(v) })));
  }
  box.replaceChildren(
    el("div", { class: "file", title: r.path, text: r.key }),
    el("div", { class: "verdict-line" },
      el("span", { class: "verdict v-" + (r.verdict || "none"), text: r.verdict || "?" }),
      el("span", { class: "harmony", text: "harmony " + fmt(r.harmony) }),
      el("span", { class: "emotion", text: t ? `reads ${t[0]} ${fmt(t[1])}` : "no reading" }),
      r.target ? el("span", { class: "target", text: "target " + r.target }) : null),
    el("div", { class: "flags" }, ...((r.flags || []).length ? r.flags.map((f) => chip(f, "flag")) : [chip("no flag", "ok")])),
    el("p", { class: "reason", text: r.reason || "" }),
    bars,
  );
}

function renderFields(r) {
  const box = $("fields");
  const vocab = S.data.vocab;
  if (!r) return box.replaceChildren();
  const lab = labelOf(r) || {};
  const ev = evaluatorReading(r);
  const rows = [["emotion", "face", vocab, (i) => String(i + 1)],
    ["eyes", "eyes", vocab, (i) => "e" + (i + 1)], ["brows", "brows", vocab, (i) => "b" + (i + 1)],
    ["mouth", "mouth", vocab, (i) => "m" + (i + 1)],
    ["verdict", "verdict", S.data.verdicts, (i) => ["p", "a", "x"][i]]];
  box.replaceChildren(...rows.map(([field, title, opts, key]) =>
    el("div", { class: "field" + (S.pending === field ? " pending" : ""), "data-field": field },
      el("span", { class: "fname", text: title }),
      el("span", { class: "opts" }, ...opts.map((o, i) => {
        const b = el("button", { type: "button", class: ["opt", lab[field] === o ? "chosen" : "", ev[field] === o ? "evaluator" : ""].join(" "),
          "data-value": o, title: ev[field] === o ? "the evaluator's reading" : null,
          on: { click: (e) => { e.currentTarget.blur(); enqueue(() => change(field, o)); } } },
          el("kbd", { text: key(i) }), document.createTextNode(" " + o));
        b.style.setProperty("--c", field === "verdict" ? VERDICT_COLOURS[o] : colour(o));
        return b;
      })))));
  $("label-state").textContent = labelOf(r) ? "saved " + (lab.labelled_at || "") : "not labelled";
  $("label-state").className = labelOf(r) ? "saved" : "";
}

function thumb(r, idx) {
  const lab = labelOf(r);
  const fb = ((r.regions || {}).face || {}).box;
  let pic;
  if (fb) {
    const vb = faceCrop(r, null, null, 0.25);
    pic = el("svg:svg", { viewBox: vb.join(" "), preserveAspectRatio: "xMidYMid slice" },
      el("svg:image", { href: imgUrl(r.key), x: 0, y: 0, ...(S.sizes.has(r.key) ? { width: S.sizes.get(r.key)[0], height: S.sizes.get(r.key)[1] } : {}) }));
    if (!S.sizes.has(r.key)) imageSize(r.key).then((s) => { if (s) { pic.firstChild.setAttribute("width", s[0]); pic.firstChild.setAttribute("height", s[1]); } });
  } else pic = el("img", { src: imgUrl(r.key), alt: "" });
  return el("button", { type: "button", class: "thumb" + (lab ? " done" : ""), title: `${r.key} · ${r.verdict}`,
    style: `--v:${VERDICT_COLOURS[r.verdict] || "#888"}`, "data-key": r.key,
    on: { click: (e) => { e.currentTarget.blur(); enqueue(() => { S.pos = idx; render(); }); } } },
    pic, el("span", { class: "tv", text: (lab ? "✓ " : "") + (r.verdict || "") }));
}

function render() {
  if (!S.data) return;
  const r = current();
  const p = S.data.progress;
  $("progress-text").textContent = `${p.labelled} / ${p.total} labelled`;
  $("progress-bar").style.width = p.total ? `${(100 * p.labelled) / p.total}%` : "0";
  $("position").textContent = S.view.length ? `${S.pos + 1} / ${S.view.length} in this view` +
    (S.view.length < S.rows.length ? ` (filtered from ${S.rows.length})` : "") : "";
  renderStage(r);
  renderReading(r);
  renderFields(r);
  const next = [];
  for (let i = S.pos + 1; i < S.view.length && next.length < STRIP; i++) next.push(thumb(S.rows[S.view[i]], i));
  $("strip").replaceChildren(...(next.length ? next : [el("span", { class: "muted", text: "end of this view" })]));
  $("btn-undo").disabled = !S.undo.length;
  $("vocab-help").replaceChildren(...S.data.vocab.slice(0, 9).map((v) => el("li", { text: v })));
  showPending();
}

// ---------------------------------------------------------------------------------- fit
function showFit(st) {
  const panel = $("fit-panel");
  panel.hidden = false;
  const body = $("fit-body");
  const kids = [el("p", { class: "fit-" + st.state, text: st.message || st.state })];
  if (st.summary) kids.push(el("p", { class: "muted", text: st.summary }));
  if (st.changed) {
    const list = el("ul", { class: "changed" });
    for (const c of st.changed.slice(0, 200)) {
      list.append(el("li", {}, el("button", { type: "button", class: "linkish", text: c.key,
        on: { click: () => enqueue(() => goTo(c.key)) } }),
      el("span", { class: "verdict v-" + c.before, text: c.before }), document.createTextNode(" → "),
      el("span", { class: "verdict v-" + c.after, text: c.after })));
    }
    kids.push(list);
  }
  if (st.command) kids.push(el("p", { class: "muted small" }, document.createTextNode("Rerun by hand: "), el("code", { text: st.command })));
  body.replaceChildren(...kids);
  $("btn-fit").disabled = st.state === "running";
}

async function startFit() {
  const st = await api("POST", "/api/fit", {});
  showFit(st);
  for (;;) {
    await new Promise((res) => setTimeout(res, 1000));
    const s = await api("GET", "/api/fit");
    showFit(s);
    if (s.state !== "running") break;
  }
}

// ---------------------------------------------------------------------------------- wiring
document.addEventListener("keydown", onKey);
for (const sel of document.querySelectorAll(".filters select")) {
  sel.addEventListener("change", () => {
    S.filters[sel.dataset.field] = sel.value;
    sel.blur(); // keys go back to labelling
    enqueue(() => { const r = current(); computeView(); const at = r ? S.view.indexOf(S.byKey.get(r.key)) : -1;
      S.pos = at >= 0 ? at : firstUnlabelled(); render(); });
  });
}
const click = (id, fn) => $(id).addEventListener("click", (e) => { e.currentTarget.blur(); enqueue(fn); });
click("btn-prev", () => move(-1));
click("btn-next", () => move(1));
click("btn-accept", accept);
click("btn-undo", undo);
$("btn-fit").addEventListener("click", () => startFit().catch((e) => { toast(e.message, true); $("btn-fit").disabled = false; }));
$("btn-help").addEventListener("click", () => ($("help").hidden = !$("help").hidden));
$("help").addEventListener("click", (e) => { if (e.target.id === "help") $("help").hidden = true; });
$("fit-close").addEventListener("click", () => ($("fit-panel").hidden = true));
// another tab may have labelled meanwhile: refresh the labels when this one comes back
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && S.data) enqueue(() => { const r = current(); return load(r && r.key); });
});
enqueue(() => load());
