"""Video input: a reference photo verified against the faces of a clip.

:mod:`.frames` reads the frames (OpenCV/FFmpeg, content sniffed) and makes test clips from
still photos; :mod:`.verify` detects and tracks the faces, scores each frame, decides over the
clip (the mean of the best track's top-k frame scores against the model's threshold) and
explains the best deciding frame.
"""
from __future__ import annotations

from .frames import Frame, VideoError, frame_count, make_clip, read_frames, sniff_container
from .verify import FrameScore, VideoVerdict, box_iou, verify_video

__all__ = ["Frame", "FrameScore", "VideoError", "VideoVerdict", "box_iou", "frame_count", "make_clip", "read_frames",
           "sniff_container", "verify_video"]
