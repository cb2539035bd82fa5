"""Explanations written to disk: a standalone HTML report, and the maps as ``.npy`` with a JSON sidecar.

:func:`write_report` makes one HTML file that opens anywhere without a server or a network:
images are embedded as base64 PNG data URIs, the style sheet is inline, there is no script, and
every piece of text (file names, parameters) is escaped. :func:`save_explanations` writes the
numbers themselves: per method ``<method>_<kind>_<a|b>.npy`` (float32, crop resolution, the
method's own units) and ``explanations.json`` (each :meth:`PairExplanation.data` without the
maps, plus the names of its ``.npy`` files).
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from ..errors import ConfigError, ModelNotFoundError
from ..io.files import ensure_dir, save_npy_atomic, write_text_atomic
from .base import MAP_KINDS, PairExplanation
from .visualize import (
    Photos, crop_overlays, legend_strip, load_photos, map_on_background, photo_overlays, score_text, signed_maps,
    _as_list,
)

__all__ = ["map_filename", "save_explanations", "write_report"]

PathLike = Union[str, "os.PathLike[str]"]

#: photos are shrunk to this many pixels on their longer side in the report
REPORT_PHOTO_SIZE = 360
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1100px;
color:#222;padding:0 1em;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}
h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1em;margin:1em 0 .4em}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f6f6f6;font-weight:600}
.match{color:#1a7f37;font-weight:700}.nomatch{color:#b4235a;font-weight:700}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}figure{margin:0;text-align:center}
figcaption{font-size:.85em;color:#555;max-width:260px;overflow-wrap:anywhere}
img.crop{width:180px;height:180px;image-rendering:auto}img.photo{max-width:260px;max-height:260px}
img.map{width:150px;height:150px}.note{color:#666;font-size:.9em}.ref{color:#555;font-style:italic}
.legend{border:1px solid #ddd;background:#fafafa;padding:.6em 1em;margin:1em 0}
.legend img{width:320px;height:16px;vertical-align:middle;border:1px solid #bbb}
.sw{display:inline-block;width:1em;height:1em;vertical-align:middle;border:1px solid #999}
code{font-size:.92em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _png_uri(rgb: np.ndarray, max_side: int | None = None) -> str:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb))
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(rgb: np.ndarray, cls: str, caption: str, alt: str, max_side: int | None = None) -> str:
    return (f'<figure><img class="{cls}" src="{_png_uri(rgb, max_side)}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    return str(v)


def _table(rows: Sequence[tuple[str, Any]], header: tuple[str, str] | None = None) -> str:
    head = f"<tr><th>{_e(header[0])}</th><th>{_e(header[1])}</th></tr>" if header else ""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{head}{body}</table>"


def _verdict_html(e: PairExplanation) -> str:
    return f'<span class="{"match" if e.match else "nomatch"}">{"match" if e.match else "no match"}</span>'


def _method_meta(name: str) -> tuple[str, str, str]:
    from .base import explainer_info

    try:
        info = explainer_info(name)
    except ModelNotFoundError:
        return "", "", ""
    return info.family, info.reference, info.description


def _section(e: PairExplanation, photos: tuple[np.ndarray, np.ndarray] | None, index: int) -> str:
    family, reference, description = _method_meta(e.method)
    faces = (e.pair.a, e.pair.b)
    explained = [m is not None for m in e.combined_maps]
    name = lambda i: Path(faces[i].source).name if faces[i].source else f"image {'AB'[i]}"  # noqa: E731
    tag = lambda i: "" if explained[i] else " (not explained)"  # noqa: E731
    parts = [f'<section id="m{index}"><h2>{_e(e.method)}</h2>']
    meta = " · ".join(_e(x) for x in (family, description) if x)
    if meta:
        parts.append(f"<p>{meta}</p>")
    if reference:
        parts.append(f'<p class="ref">{_e(reference)}</p>')
    parts.append(f"<p>{_verdict_html(e)}: {_e(score_text(e))}, model {_e(e.model)}</p>")

    parts.append("<h3>Combined map on the faces</h3><div class=\"row\">")
    for i, img in enumerate(crop_overlays(e)):
        parts.append(_img(img, "crop", f"{'AB'[i]}: aligned crop{tag(i)}", f"combined map on crop {'AB'[i]}"))
    if photos is not None:
        for i, img in enumerate(photo_overlays(e, photos)):
            parts.append(_img(img, "photo", f"{'AB'[i]}: {name(i)}{tag(i)}", f"combined map on photo {'AB'[i]}",
                              REPORT_PHOTO_SIZE))
    parts.append("</div>")

    parts.append("<h3>Maps</h3><table><tr><th></th>" + "".join(f"<th>{k}</th>" for k in MAP_KINDS) + "</tr>")
    scaled = {k: signed_maps(e, k) for k in MAP_KINDS}
    for i in (0, 1):
        parts.append(f"<tr><th>{'AB'[i]}<br><span class=\"note\">{_e(name(i))}</span></th>")
        for k in MAP_KINDS:
            m = scaled[k][i]
            if m is None:
                parts.append('<td class="note">not computed</td>')
            else:
                raw = e.maps(k)[i]
                cap = f"min {float(np.nanmin(raw)):.3g}, max {float(np.nanmax(raw)):.3g}"
                alt = f"{k} map of image {'AB'[i]}"
                parts.append(f"<td>{_img(map_on_background(faces[i].image, m), 'map', cap, alt)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    parts.append('<p class="note">similarity and dissimilarity share one scale (the larger of the two over both '
                 "images); combined maps are scaled by the pair's largest |combined|.</p>")

    if e.images:
        parts.append("<h3>Pictures</h3><div class=\"row\">")
        for label, img in e.images.items():
            parts.append(_img(img, "crop", label, label))
        parts.append("</div>")
    parts.append("<h3>Parameters</h3>")
    parts.append(_table(sorted(e.params.items())) if e.params else '<p class="note">none</p>')
    if e.extra:
        parts.append("<h3>Details</h3>" + _table(sorted(e.extra.items())))
    parts.append("<h3>Cost</h3>" + _table([("forward passes (images)", e.n_forward),
                                            ("backward passes (per image)", e.n_backward),
                                            ("seconds", round(float(e.seconds), 4))]))
    parts.append("</section>")
    return "".join(parts)


def _legend() -> str:
    return (
        '<div class="legend"><b>How to read the maps.</b> '
        '<span class="sw" style="background:rgb(0,200,60)"></span> green: the region argues for a match '
        '(similarity); <span class="sw" style="background:rgb(235,25,105)"></span> pink-red: it argues against '
        "(dissimilarity). Opacity is proportional to the value divided by the pair's largest absolute value, so "
        "both faces share one scale; near zero the face shows through.<br>"
        f'<span class="note">-1</span> <img src="{_png_uri(legend_strip(320, 16))}" alt="colour scale from pink '
        '(-1, dissimilarity) through white (0) to green (+1, similarity)"> <span class="note">+1</span></div>'
    )


def write_report(explanations: Sequence[PairExplanation] | PairExplanation, path: PathLike,
                 photos: Photos | None = None, on_photo: bool | None = None,
                 title: str = "Face pair explanation", sections: Sequence[Any] = ()) -> Path:
    """Write a self-contained HTML report for one pair and one or more methods.

    Args:
        explanations: explanations of the same pair (one per method, typically).
        path: the ``.html`` file to write (parent folders are created).
        photos: ``(photo_a, photo_b)`` for the overlays on the original photos (see
            :func:`~xaiface.explain.visualize.load_photos`); by default read from the aligned
            faces' path sources.
        on_photo: ``True`` requires the photo overlays, ``False`` leaves them out, ``None``
            (default) draws them when the photos can be had.
        title: the page's heading.
        sections: further blocks placed after the maps, each with an ``html()`` method giving a
            self-contained, escaped HTML fragment (e.g. the soft-biometrics section of
            :func:`xaiface.soft.report.report_section`).
    Returns:
        ``path`` as a :class:`Path`.
    Raises:
        ConfigError: no explanation, or ``on_photo=True`` and the photos cannot be had.
    """
    exps = _as_list(explanations)
    first = exps[0]
    pics: tuple[np.ndarray, np.ndarray] | None = None
    if on_photo is not False:
        try:
            pics = load_photos(first, photos)
        except ConfigError:
            if on_photo:
                raise
    faces = (first.pair.a, first.pair.b)
    scores = {round(float(e.score), 6) for e in exps}
    summary = [
        ("image A", faces[0].source or "(no source)"), ("image B", faces[1].source or "(no source)"),
    ]
    body = [f"<h1>{_e(title)}</h1>", "<h2>Pair</h2><table>"]
    body += [f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in summary]
    body.append(f"<tr><th>verdict</th><td>{_verdict_html(first)}</td></tr>")
    body.append(f"<tr><th>score (cosine)</th><td>{first.score:.4f}"
                + (" (differs between methods, see below)" if len(scores) > 1 else "") + "</td></tr>")
    body.append(f"<tr><th>threshold</th><td>{first.threshold:.4f}</td></tr>")
    body.append(f"<tr><th>model</th><td>{_e(first.model)}</td></tr>")
    links = ", ".join(f'<a href="#m{i}">{_e(e.method)}</a>' for i, e in enumerate(exps))
    body.append(f"<tr><th>methods</th><td>{links}</td></tr></table>")
    body.append(_legend())
    body.append("<h2>Cost</h2><table><tr><th>method</th><th>forwards</th><th>backwards</th><th>seconds</th></tr>")
    body += [f"<tr><td>{_e(e.method)}</td><td>{e.n_forward}</td><td>{e.n_backward}</td><td>{e.seconds:.3f}</td></tr>"
             for e in exps]
    body.append("</table>")
    body += [_section(e, pics, i) for i, e in enumerate(exps)]
    body += [sec.html() for sec in sections]
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}: "
           f"{_e(Path(faces[0].source).name if faces[0].source else 'A')} vs "
           f"{_e(Path(faces[1].source).name if faces[1].source else 'B')}</title>"
           f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    return write_text_atomic(path, doc)


# ---- the numbers ------------------------------------------------------------------------------

def map_filename(method: str, kind: str, index: int) -> str:
    """``<method>_<kind>_<a|b>.npy`` (characters other than letters, digits, ``-``, ``.`` become ``_``)."""
    if kind not in MAP_KINDS or index not in (0, 1):
        raise ConfigError(f"kind must be one of {MAP_KINDS} and index 0 or 1, got {kind!r}, {index!r}")
    return f"{re.sub(r'[^A-Za-z0-9.-]', '_', method)}_{kind}_{'ab'[index]}.npy"


def save_explanations(explanations: Sequence[PairExplanation] | PairExplanation, out_dir: PathLike) -> Path:
    """Write the maps as ``.npy`` files and ``explanations.json``; returns the JSON file's path.

    Each map ``(S, S)`` goes to ``<method>_<kind>_<a|b>.npy`` as float32 (a missing map writes no
    file). ``explanations.json`` holds ``{"explanations": [...]}``, one entry per explanation:
    :meth:`PairExplanation.data` with ``include_maps=False`` plus ``"files"``:
    ``{kind: [name_a or null, name_b or null]}`` relative to ``out_dir``. A method given twice
    gets ``-2``, ``-3``... appended to its file names.
    """
    exps = [explanations] if isinstance(explanations, PairExplanation) else list(explanations)
    if not exps:
        raise ConfigError("no explanation to save")
    out = ensure_dir(out_dir, "explanation folder")
    seen: dict[str, int] = {}
    records = []
    for e in exps:
        seen[e.method] = seen.get(e.method, 0) + 1
        stem = e.method if seen[e.method] == 1 else f"{e.method}-{seen[e.method]}"
        files: dict[str, list[str | None]] = {}
        for kind in MAP_KINDS:
            names: list[str | None] = []
            for i, m in enumerate(e.maps(kind)):
                if m is None:
                    names.append(None)
                    continue
                fn = map_filename(stem, kind, i)
                save_npy_atomic(out / fn, np.asarray(m, dtype=np.float32))
                names.append(fn)
            files[kind] = names
        rec = e.data(include_maps=False)
        rec["files"] = files
        records.append(rec)
    js = out / "explanations.json"
    write_text_atomic(js, json.dumps({"explanations": records}, indent=2))
    return js
