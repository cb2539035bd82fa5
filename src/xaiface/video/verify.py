"""Verify a face in a clip against a reference photo: a score per frame, one decision over the clip.

The pipeline is the still-photo one (:class:`~xaiface.pipeline.FacePipeline`): its detector
finds every face of each frame, each face is aligned to the model's geometry and embedded, and
its cosine similarity with the reference's face is the frame's score for that face.

**Tracking.** Faces are linked across frames into tracks (one per person seen) greedily by box
overlap: a face joins the track whose last box overlaps it most (IoU >= ``min_iou``, 0.3),
provided that track was seen within the last ``max_gap`` frames read; otherwise it starts a new
track. Scores are then pooled per track, so the frames of one person are judged together and a
bystander's face never lends its frames to the subject.

**The decision rule (documented and fixed).** A track's score is the **mean of its top-k frame
scores** (``k = 3``; all its frames when it has fewer): the clip is decided by the person's best
views (frontal, sharp, little compressed), not by the blurred or turned-away frames between, and
no single frame decides alone, so one spuriously high frame cannot make a match. The clip's
score is the best track's score; **match when it is >= the pipeline's threshold** (the model's
calibrated operating point for single pairs). The top-k frames of that track are the deciding
frames; the best of them is explained (``xssab`` by default) against the reference.

Caveat, stated rather than hidden: taking the best of several frames raises impostor scores
too, so the false-match rate of a clip decision is above the single-pair FMR of the threshold
used; it has not been calibrated on clips (no face video data set is shared with the project).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, NoFaceError

__all__ = ["FrameScore", "VideoVerdict", "box_iou", "verify_video"]


@dataclass(frozen=True)
class FrameScore:
    """One face of one frame: ``frame`` index, ``time`` (s), ``track`` id, its ``box`` and ``score``."""

    frame: int
    time: float
    track: int
    box: tuple[float, float, float, float]
    score: float


@dataclass
class VideoVerdict:
    """The clip's decision and its evidence.

    Attributes:
        score, threshold, threshold_name, match: the clip's score (best track's top-k mean) and decision.
        rule: the rule in words. top_k: k. track: the deciding track. deciding_frames: its top-k frames.
        frames_read: frames decoded; frames_with_face: frames where a face was found.
        scores: every face of every frame read (:class:`FrameScore`).
        track_scores: each track's top-k mean. model, detector, reference, clip: what was used.
        explanation: the best deciding frame's explanation (``None`` when not asked); explained_frame:
            its index; best_frame: that frame's image (``(H, W, 3)`` uint8).
    """

    score: float
    threshold: float
    threshold_name: str
    match: bool
    rule: str
    top_k: int
    track: int
    deciding_frames: list[int]
    frames_read: int
    frames_with_face: int
    scores: list[FrameScore]
    track_scores: dict[int, float]
    model: str
    detector: str
    reference: str
    clip: str
    explanation: Any = None
    explained_frame: int | None = None
    best_frame: np.ndarray | None = field(default=None, repr=False)

    def frame_series(self, track: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(frame indices, scores)`` of one track (default the deciding one), in frame order."""
        t = self.track if track is None else track
        rows = sorted((s.frame, s.score) for s in self.scores if s.track == t)
        return np.array([r[0] for r in rows], dtype=int), np.array([r[1] for r in rows], dtype=float)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "score": round(float(self.score), 6), "threshold": round(float(self.threshold), 6),
            "threshold_name": self.threshold_name, "decision": "match" if self.match else "no match",
            "match": bool(self.match), "rule": self.rule, "top_k": self.top_k, "track": self.track,
            "deciding_frames": self.deciding_frames, "frames_read": self.frames_read,
            "frames_with_face": self.frames_with_face, "model": self.model, "detector": self.detector,
            "reference": self.reference, "clip": self.clip,
            "track_scores": {str(k): round(v, 6) for k, v in self.track_scores.items()},
            "frames": [{"frame": s.frame, "time": round(s.time, 4), "track": s.track, "score": round(s.score, 6),
                        "box": [round(v, 1) for v in s.box]} for s in self.scores],
            "explained_frame": self.explained_frame,
        }
        if self.explanation is not None:
            d["explanation"] = self.explanation.data(include_maps=False)
        return d

    def plot(self, path: str | os.PathLike) -> Any:
        """The per-frame scores of every track, the threshold, and the deciding frames (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        from ..io.files import savefig_atomic

        fig = Figure(figsize=(7.0, 3.2), dpi=110)
        ax = fig.add_subplot(1, 1, 1)
        for t in sorted(self.track_scores):
            x, y = self.frame_series(t)
            lw = 2.0 if t == self.track else 1.0
            ax.plot(x, y, "o-" if t == self.track else ".-", ms=3, lw=lw,
                    label=f"track {t}" + (" (deciding)" if t == self.track else ""))
        ax.axhline(self.threshold, color="0.3", ls="--", lw=1, label=f"threshold {self.threshold_name} = {self.threshold:.3f}")
        ax.axhline(self.score, color="tab:green" if self.match else "tab:red", ls=":", lw=1.2,
                   label=f"clip score (top-{self.top_k} mean) = {self.score:.3f}")
        x, y = self.frame_series()
        sel = np.isin(x, self.deciding_frames)
        ax.plot(x[sel], y[sel], "s", mfc="none", mec="k", ms=8, label="deciding frames")
        ax.set_xlabel("frame")
        ax.set_ylabel("cosine similarity to the reference")
        ax.set_title(f"{'match' if self.match else 'no match'}: {self.model}, {self.frames_with_face}/{self.frames_read} "
                     "frames with a face", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return savefig_atomic(fig, path)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes ``(x0, y0, x1, y1)``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def verify_video(reference: Any, clip: str | os.PathLike, pipeline: Any = None, top_k: int = 3, stride: int = 1,
                 max_frames: int = 300, min_iou: float = 0.3, max_gap: int = 5, explain: str | None = "xssab",
                 reference_name: str | None = None, clip_name: str | None = None,
                 progress: Callable[[float, str], None] | None = None) -> VideoVerdict:
    """Score every frame of ``clip`` against the face of ``reference`` and decide (see the module docstring).

    Args:
        reference: the reference photo (anything :func:`~xaiface.io.load_image` reads).
        clip: the video file. pipeline: a :class:`~xaiface.pipeline.FacePipeline` with
            ``flip=False`` (default ``FacePipeline()``), or a function returning one.
        top_k: frames pooled per track. stride: read every stride-th frame. max_frames: frames read at most.
        min_iou, max_gap: the tracker's settings. explain: the method explaining the best deciding
            frame (``None``: none). reference_name, clip_name: names in messages and results.
        progress: ``progress(fraction, stage)`` after each frame (raising there stops the work).
    Raises:
        NoFaceError: no face in the reference, or in any frame read.
        VideoError: the clip cannot be read. ConfigError: a bad setting.
    """
    from ..align import align_face
    from ..detect.base import select_faces
    from ..pipeline import FacePipeline
    from ..verify.similarity import pair_similarity
    from .frames import frame_count, read_frames

    if top_k < 1 or not 0 < min_iou <= 1 or max_gap < 0:
        raise ConfigError(f"need top_k >= 1, 0 < min_iou <= 1, max_gap >= 0; got {top_k}, {min_iou}, {max_gap}")
    pipe = FacePipeline() if pipeline is None else (pipeline() if callable(pipeline) else pipeline)
    ref_label = reference_name or (str(reference) if isinstance(reference, (str, os.PathLike)) else "reference")
    clip_label = clip_name or str(clip)
    ref = pipe.align(reference, name=ref_label)
    e_ref = pipe.embed_aligned([ref])[0]
    geometry = pipe.model.spec.preprocessing.geometry
    scores: list[FrameScore] = []
    tracks: dict[int, tuple[np.ndarray, int]] = {}  # id -> (last box, last frame read)
    aligned: dict[tuple[int, int], Any] = {}  # (frame, track) -> aligned face, for the explanation
    images: dict[int, np.ndarray] = {}
    n_read = 0
    declared = frame_count(clip) if os.path.isfile(clip) else None
    expected = min(max_frames, -(-declared // stride)) if declared else max_frames  # for the progress fraction
    for fr in read_frames(clip, stride=stride, max_frames=max_frames, name=clip_label):
        try:
            faces = select_faces(pipe.detect(fr.image), fr.image.shape, "all", source=f"{clip_label} frame {fr.index}")
        except NoFaceError:
            faces = []
        if faces:
            crops = [align_face(fr.image, f, geometry, source=f"{clip_label} frame {fr.index}") for f in faces]
            emb = pipe.embed_aligned(crops)
            used: set[int] = set()
            for f, c, e in zip(faces, crops, emb):
                tid = _assign(tracks, np.asarray(f.box, float), n_read, used, min_iou, max_gap)
                used.add(tid)
                tracks[tid] = (np.asarray(f.box, float), n_read)
                scores.append(FrameScore(fr.index, fr.time, tid, tuple(float(v) for v in f.box), float(pair_similarity(e_ref, e))))
                aligned[(fr.index, tid)] = c
            images[fr.index] = fr.image
        n_read += 1
        if progress is not None:
            progress(min(0.95, n_read / expected), f"frame {fr.index}")
    if not scores:
        raise NoFaceError(f"{clip_label}: no face found in any of the {n_read} frames read")
    track_scores: dict[int, float] = {}
    top: dict[int, list[FrameScore]] = {}
    for tid in sorted({s.track for s in scores}):
        best = sorted((s for s in scores if s.track == tid), key=lambda s: -s.score)[:top_k]
        top[tid] = best
        track_scores[tid] = float(np.mean([s.score for s in best]))
    deciding = max(track_scores, key=lambda t: track_scores[t])
    score = track_scores[deciding]
    frames = sorted(s.frame for s in top[deciding])
    best = top[deciding][0]
    verdict = VideoVerdict(
        score=score, threshold=pipe.threshold, threshold_name=pipe.threshold_name, match=score >= pipe.threshold,
        rule=f"mean of the top-{top_k} frame scores of each face track; the best track decides; match when >= threshold",
        top_k=top_k, track=deciding, deciding_frames=frames, frames_read=n_read,
        frames_with_face=len({s.frame for s in scores}), scores=scores, track_scores=track_scores,
        model=pipe.model.spec.name, detector=pipe.detector.name, reference=ref_label, clip=clip_label,
        explained_frame=best.frame, best_frame=images[best.frame])
    if explain:
        from ..explain.base import FacePair, Verifier, get_explainer

        verdict.explanation = get_explainer(explain, Verifier.from_pipeline(pipe)).explain(
            FacePair(ref, aligned[(best.frame, best.track)]))
    if progress is not None:
        progress(1.0, "done")
    return verdict


def _assign(tracks: dict[int, tuple[np.ndarray, int]], box: np.ndarray, now: int, used: set[int],
            min_iou: float, max_gap: int) -> int:
    """The track a face joins: the live, not yet used track overlapping it most, else a new one."""
    best, best_iou = None, min_iou
    for tid, (last, seen) in tracks.items():
        if tid in used or now - seen > max_gap + 1:
            continue
        iou = box_iou(box, last)
        if iou >= best_iou:
            best, best_iou = tid, iou
    return best if best is not None else (max(tracks) + 1 if tracks else 0)
