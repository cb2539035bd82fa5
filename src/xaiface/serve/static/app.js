// The xaiface demo page: it talks only to this server's REST API (/api/...).
// Text from the server (file names, messages) is set as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (e) { body = { error: "HTTPError", detail: r.statusText }; }
  if (!r.ok && r.status !== 202) {
    const err = new Error(`${body.error || "error"} (${r.status}): ${body.detail || r.statusText}`);
    err.status = r.status;
    throw err;
  }
  return { status: r.status, body };
}

function showError(e) {
  const box = $("error");
  box.textContent = e ? String(e.message || e) : "";
  box.hidden = !e;
}

let currentJob = null;

async function loadChoices() {
  const [models, methods, factors, samples] = await Promise.all([
    api("/api/models"), api("/api/explainers"), api("/api/factors"), api("/api/samples")]);
  for (const m of models.body.models) {
    const o = el("option", { value: m.name, text: m.name + (m.available === true ? "" : " (unavailable)") });
    if (m.available !== true) o.disabled = true;
    if (m.name === "dlib-resnet") o.selected = true;
    $("model").append(o);
  }
  for (const m of methods.body.explainers) {
    const id = "method-" + m.name;
    const box = el("input", { type: "checkbox", id, value: m.name, name: "method" });
    if (m.name === "xssab") box.checked = true;
    if (m.available !== true) { box.disabled = true; }
    const label = el("label", { for: id, title: m.available === true ? m.description : String(m.available),
                                class: m.mode === "job" ? "slow" : "" }, box,
                     " " + m.name + (m.mode === "job" ? " (background job)" : "") + (m.available === true ? "" : " (unavailable)"));
    $("methods").append(label);
  }
  for (const f of factors.body.factors) {
    const o = el("option", { value: f.name, text: `${f.name} (${f.family})` });
    o.dataset.levels = JSON.stringify(f.levels);
    o.dataset.help = f.level;
    $("factor").append(o);
  }
  for (const s of samples.body.samples) {
    $("sample").append(el("option", { value: String(s.id), text: `${s.a} / ${s.b} (${s.same ? "same person" : "different people"})` }));
  }
}

function onFactor() {
  const o = $("factor").selectedOptions[0];
  if (!o || !o.value) { $("level").value = ""; $("level-help").textContent = ""; return; }
  const levels = JSON.parse(o.dataset.levels);
  $("level").value = levels[0];
  $("level-help").textContent = o.dataset.help;
}

function preview(input, img) {
  const f = input.files[0];
  if (f) { img.src = URL.createObjectURL(f); $("sample").value = ""; }
}

function onSample() {
  const v = $("sample").value;
  if (v === "") return;
  $("file-a").value = ""; $("file-b").value = "";
  $("preview-a").src = `/api/samples/${v}/a`;
  $("preview-b").src = `/api/samples/${v}/b`;
}

function pairForm() {
  const fd = new FormData();
  const sample = $("sample").value;
  if (sample !== "") fd.append("sample", sample);
  else {
    if ($("file-a").files[0]) fd.append("image_a", $("file-a").files[0]);
    if ($("file-b").files[0]) fd.append("image_b", $("file-b").files[0]);
  }
  fd.append("model", $("model").value);
  fd.append("threshold", $("threshold").value);
  return fd;
}

function verdictText(v) {
  const rel = v.match ? ">=" : "<";
  return `${v.decision}: score ${v.similarity.toFixed(4)} ${rel} threshold ${v.threshold.toFixed(4)} (${v.threshold_name}, ${v.model})`;
}

function showVerdict(v) {
  const box = $("verdict");
  box.textContent = verdictText(v);
  box.className = "verdict " + (v.match ? "match" : "nomatch");
  box.dataset.decision = v.decision;
  box.dataset.score = String(v.similarity);
  box.hidden = false;
}

function clearResults() {
  showError(null);
  $("results").replaceChildren();
  $("verdict").hidden = true;
  $("legend").hidden = true;
}

async function doVerify() {
  clearResults();
  try {
    const r = await api("/api/verify", { method: "POST", body: pairForm() });
    showVerdict(r.body);
  } catch (e) { showError(e); }
}

function figure(src, caption, cls) {
  return el("figure", {}, el("img", { src, alt: caption, class: cls || "" }), el("figcaption", { text: caption }));
}

function canvasFigure(canvas, caption) {
  return el("figure", {}, canvas, el("figcaption", { text: caption }));
}

async function loadImage(src) {
  const img = new Image();
  img.src = src;
  await img.decode();
  return img;
}

// A grey map PNG (value = (pixel - 128) / 127) painted as the report paints it: green > 0, pink-red < 0,
// opacity max_alpha * |value|. Returns the RGBA canvas and how many pixels it colours.
async function colourMap(src, legend) {
  const img = await loadImage(src);
  const c = el("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height);
  const px = data.data;
  let painted = 0;
  for (let i = 0; i < px.length; i += 4) {
    const v = Math.max(-1, Math.min(1, (px[i] - 128) / 127));
    const rgb = v >= 0 ? legend.similarity_rgb : legend.dissimilarity_rgb;
    const a = legend.max_alpha * Math.abs(v);
    px[i] = rgb[0]; px[i + 1] = rgb[1]; px[i + 2] = rgb[2]; px[i + 3] = Math.round(255 * a);
    if (a > 0.02) painted += 1;
  }
  ctx.putImageData(data, 0, 0);
  return { canvas: c, painted };
}

function paintOn(background, width, height, map, transform) {
  const c = el("canvas", { class: transform ? "map photo" : "map" });
  c.width = width; c.height = height;
  const ctx = c.getContext("2d");
  ctx.drawImage(background, 0, 0, width, height);
  if (transform) ctx.setTransform(...transform);
  ctx.drawImage(map.canvas, 0, 0);
  c.dataset.painted = String(map.painted);
  return c;
}

async function methodBlock(m, res) {
  const block = el("div", { class: "method", "data-method": m.method });
  block.append(el("h3", { text: `${m.method}: ${m.decision}, score ${m.score.toFixed(4)} (${m.threshold_name} ${m.threshold.toFixed(4)}); ` +
                                `${m.n_forward} forwards, ${m.n_backward} backwards, ${m.seconds.toFixed(2)} s` }));
  const maps = el("div", { class: "maps" });
  const kind = m.evidence;  // similarity for an accept, dissimilarity for a reject (as the XAIface demo)
  if (m.images) {  // painted by the server
    const im = m.images;
    maps.append(figure(im.combined_crop[0], "A: combined (crop)", "map"), figure(im.combined_crop[1], "B: combined (crop)", "map"),
                figure(im[kind + "_crop"][0], `A: ${kind}`, "map"), figure(im[kind + "_crop"][1], `B: ${kind}`, "map"),
                figure(im.combined_photo[0], "A: on the photo", "map photo"), figure(im.combined_photo[1], "B: on the photo", "map photo"));
  } else {
    const crops = await Promise.all(res.crops.map(loadImage));
    const photos = await Promise.all(res.photoSources.map(loadImage));
    const side = ["A", "B"];
    const combined = await Promise.all(m.maps.combined.map((u) => (u ? colourMap(u, res.legend) : null)));
    const evidence = await Promise.all(m.maps[kind].map((u) => (u ? colourMap(u, res.legend) : null)));
    for (let i = 0; i < 2; i++) {
      const s = res.crops[i] ? crops[i].naturalWidth : 0;
      if (combined[i]) maps.append(canvasFigure(paintOn(crops[i], s, s, combined[i]), `${side[i]}: combined (crop)`));
    }
    for (let i = 0; i < 2; i++) {
      const s = crops[i].naturalWidth;
      if (evidence[i]) maps.append(canvasFigure(paintOn(crops[i], s, s, evidence[i]), `${side[i]}: ${kind}`));
    }
    for (let i = 0; i < 2; i++) {
      const g = res.faces[i];
      if (combined[i]) maps.append(canvasFigure(paintOn(photos[i], g.photo_size[0], g.photo_size[1], combined[i], g.canvas_transform),
                                                `${side[i]}: on the photo`));
    }
  }
  block.append(maps);
  if (m.patch_contributions) {
    const t = el("table", {}, el("tr", {}, el("th", { text: "patch" }), el("th", { text: "contribution (logit)" })));
    const top = Math.max(...m.patch_contributions.map((p) => Math.abs(p.contribution)), 1e-9);
    for (const p of m.patch_contributions) {
      const bar = el("span", { class: "bar " + (p.contribution >= 0 ? "pos" : "neg") });
      bar.style.width = `${Math.round(120 * Math.abs(p.contribution) / top)}px`;
      t.append(el("tr", {}, el("td", { text: p.patch }), el("td", {}, bar, " " + p.contribution.toFixed(3))));
    }
    block.append(el("h3", { text: "LIBF-EBM patch contributions (green for a match, pink against)" }), t);
  }
  return block;
}

function softBlock(s) {
  const b = el("div", { class: "method soft" }, el("h3", { text: "Soft biometrics" }));
  if (s.skipped) { b.append(el("p", { class: "note", text: "Left out: " + s.skipped })); return b; }
  b.append(el("p", { text: s.summary }));
  const t = el("table", {}, el("tr", {}, el("th", { text: "trait" }), el("th", { text: "A" }), el("th", { text: "B" }), el("th", { text: "pair" })));
  for (const [name, c] of Object.entries(s.data.comparisons || {})) {
    const val = (f) => (typeof f.value === "number" ? f.value.toFixed(1) : String(f.value)) + (f.unit ? " " + f.unit : "");
    t.append(el("tr", {}, el("td", { text: name }), el("td", { text: val(c.a) }), el("td", { text: val(c.b) }),
                el("td", { text: `${c.shared ? "shared" : "differs"} (p shared ${c.p_shared.toFixed(2)})` })));
  }
  b.append(t, el("img", { src: s.figure, alt: "soft-biometric explanation", class: "softfig" }));
  return b;
}

async function column(title, res, photoSources) {
  const col = el("div", { class: "column" }, el("h2", { text: title }));
  if (res.photos) {
    col.append(el("div", { class: "maps" }, figure(res.photos[0], "A under the factor", "photo"), figure(res.photos[1], "B under the factor", "photo")));
  }
  if (res.error) { col.append(el("p", { class: "error", text: res.error })); return col; }
  res.photoSources = res.photos || photoSources;
  col.append(el("p", { class: "colverdict " + (res.verdict.match ? "match" : "nomatch"), text: verdictText(res.verdict) }));
  for (const m of res.methods) col.append(await methodBlock(m, res));
  if (res.soft_biometrics) col.append(softBlock(res.soft_biometrics));
  return col;
}

async function showExplanation(result, photoSources) {
  showVerdict(result.original.verdict);
  $("legend").hidden = false;
  const cols = [await column("Original pair", result.original, photoSources)];
  if (result.factor) cols.push(await column(`Under ${result.factor.factor.description} (${result.factor.factor.apply})`, result.factor, photoSources));
  $("results").replaceChildren(...cols);
  document.body.dataset.shown = String(Number(document.body.dataset.shown || 0) + 1);
}

async function runJob(status, onDone) {
  currentJob = status.id;
  $("job").hidden = false;
  try {
    for (;;) {
      const s = (await api(`/api/jobs/${status.id}`)).body;
      $("job-progress").value = s.progress;
      $("job-stage").textContent = `${s.kind}: ${s.state} ${s.stage || ""} ${Math.round(100 * s.progress)}%`;
      if (s.state === "done") { await onDone(s.result); break; }
      if (s.state === "failed") { showError(`${s.error.error}: ${s.error.detail}`); break; }
      if (s.state === "cancelled") { showError("cancelled"); break; }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    currentJob = null;
    $("job").hidden = true;
  }
}

async function doExplain(ev) {
  ev.preventDefault();
  clearResults();
  const fd = pairForm();
  const methods = [...document.querySelectorAll("#methods input:checked")].map((x) => x.value);
  fd.append("methods", methods.join(","));
  fd.append("soft", $("soft").checked ? "true" : "false");
  if ($("factor").value) {
    fd.append("factor", $("factor").value);
    fd.append("level", $("level").value);
    fd.append("apply", $("apply").value);
  }
  const sources = [$("preview-a").src, $("preview-b").src];  // the photos, as this page shows them
  $("explain-btn").disabled = true;
  try {
    const r = await api("/api/explain", { method: "POST", body: fd });
    if (r.status === 202) await runJob(r.body, (res) => showExplanation(res, sources));
    else await showExplanation(r.body, sources);
  } catch (e) { showError(e); } finally { $("explain-btn").disabled = false; }
}

async function cancelJob() {
  if (currentJob) await api(`/api/jobs/${currentJob}`, { method: "DELETE" });
}

async function showVideo(v) {
  const out = $("video-results");
  const text = `${v.decision}: clip score ${v.score.toFixed(4)} ${v.match ? ">=" : "<"} threshold ${v.threshold.toFixed(4)} ` +
               `(${v.threshold_name}); ${v.frames_with_face}/${v.frames_read} frames with a face; rule: ${v.rule}`;
  const col = el("div", { class: "column" },
                 el("p", { class: "verdict " + (v.match ? "match" : "nomatch"), id: "video-verdict", text }),
                 el("img", { src: v.plot, alt: "per-frame scores", class: "plot" }),
                 el("p", { text: `deciding frames: ${v.deciding_frames.join(", ")}; explained frame ${v.explained_frame}` }),
                 el("div", { class: "maps" }, figure(v.best_frame, `frame ${v.explained_frame}`, "photo")));
  if (v.explanation) col.append(await methodBlock(v.explanation, null));
  out.replaceChildren(col);
}

async function doVideo(ev) {
  ev.preventDefault();
  showError(null);
  $("video-results").replaceChildren();
  const fd = new FormData();
  if ($("video-ref").files[0]) fd.append("reference", $("video-ref").files[0]);
  if ($("video-clip").files[0]) fd.append("clip", $("video-clip").files[0]);
  fd.append("model", $("model").value);
  fd.append("threshold", $("threshold").value);
  fd.append("top_k", $("video-topk").value);
  fd.append("stride", $("video-stride").value);
  try {
    const r = await api("/api/verify-video", { method: "POST", body: fd });
    await runJob(r.body, showVideo);
  } catch (e) { showError(e); }
}

function switchTab(name) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
  $("tab-pair").hidden = name !== "pair";
  $("tab-video").hidden = name !== "video";
  // the job bar and the error box are shared: keep them visible on both tabs
  const panel = name === "pair" ? $("tab-pair") : $("tab-video");
  panel.prepend($("error"));
  panel.prepend($("job"));
}

window.addEventListener("DOMContentLoaded", async () => {
  $("file-a").addEventListener("change", () => preview($("file-a"), $("preview-a")));
  $("file-b").addEventListener("change", () => preview($("file-b"), $("preview-b")));
  $("sample").addEventListener("change", onSample);
  $("factor").addEventListener("change", onFactor);
  $("verify-btn").addEventListener("click", doVerify);
  $("pair-form").addEventListener("submit", doExplain);
  $("video-form").addEventListener("submit", doVideo);
  $("job-cancel").addEventListener("click", cancelJob);
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => switchTab(b.dataset.tab));
  try { await loadChoices(); document.body.dataset.ready = "1"; } catch (e) { showError(e); }
});
