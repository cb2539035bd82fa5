"""``xaiface embed``: the embeddings of every image of a folder (resumable, failures listed)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, NoFaceError, XaifaceError
from .args import pipeline_from_args

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


#: image-named files that :func:`~xaiface.io.load_image` cannot read: listed as failures, not skipped
UNSUPPORTED_IMAGE_EXTENSIONS = {".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".raw", ".dng", ".cr2", ".nef",
                                ".arw", ".svg", ".psd"}


def _list_images(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The readable image files under ``folder`` (sorted), and every other image-named entry with
    the reason it is not embedded (dangling link, link loop, not a regular file, unsupported format)."""
    import errno
    import os
    import stat

    if not folder.is_dir():
        raise XaifaceError(f"{folder}: not a folder; expected a folder of images")
    files, skipped = [], {}
    for p in sorted(folder.rglob("*")):
        ext = p.suffix.lower()
        if ext not in IMAGE_EXTENSIONS and ext not in UNSUPPORTED_IMAGE_EXTENSIONS:
            continue
        try:
            st = os.stat(p)
        except OSError as e:
            if e.errno == errno.ELOOP:
                skipped[str(p)] = f"{p}: symbolic link loop; expected an image file"
            elif p.is_symlink():
                skipped[str(p)] = f"{p}: dangling symbolic link (to {os.readlink(p)}); expected an image file"
            else:
                skipped[str(p)] = f"{p}: cannot access ({e.strerror}); expected an image file"
            continue
        if stat.S_ISDIR(st.st_mode):
            continue  # a folder with an image-like name: its contents are walked
        if not stat.S_ISREG(st.st_mode):
            skipped[str(p)] = f"{p}: not a regular file (a FIFO, device or socket); expected an image file"
        elif ext in UNSUPPORTED_IMAGE_EXTENSIONS:
            skipped[str(p)] = (f"{p}: unsupported image format ({ext}); convert it to one of "
                               f"{', '.join(sorted(IMAGE_EXTENSIONS))}")
        else:
            files.append(p)
    return files, skipped


def _embed_config(args: argparse.Namespace, pipe: Any) -> dict[str, Any]:
    """What the embeddings of ``xaiface embed`` depend on (recorded in, and checked against, the partial file)."""
    from ..io.hashing import weights_digest

    cfg = {"model": pipe.model.spec.name, "weights_sha256": weights_digest(pipe.model, args.weights),
           "detector": pipe.detector.settings(), "select": args.select, "flip": bool(args.flip),
           "all_faces": bool(args.all_faces)}
    return json.loads(json.dumps(cfg, sort_keys=True, default=str))  # as it reads back from the file


def _load_partial(partial: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The embeddings of a partial file, or ``None`` (with a warning) when it is not a readable one.

    Raises:
        ConfigError: it was computed with another configuration (the message says which setting).
    """
    from ..errors import StorageError
    from ..io.files import load_npz

    try:
        z = load_npz(partial)
        try:
            paths, embs, boxes, cfg = z["paths"], z["embeddings"], z["boxes"], z.get("config")
        except KeyError as e:
            raise StorageError(f"{partial}: no array {e}; not an embed partial file") from None
        if embs.ndim != 2 or len(paths) != len(embs) or boxes.shape != (len(paths), 4):
            raise StorageError(f"{partial}: arrays of inconsistent shapes {paths.shape}, {embs.shape}, {boxes.shape}")
    except StorageError as e:
        print(f"xaiface: warning: {e}; not a usable partial file: starting fresh (it will be overwritten)",
              file=sys.stderr)
        return None
    stored = None if cfg is None else json.loads(str(cfg))
    if stored is None:
        raise ConfigError(f"{partial}: records no configuration (written by an older xaiface), so it cannot be "
                          f"checked against this run; delete {partial} to start fresh")
    for k in sorted(set(stored) | set(config)):
        if stored.get(k) != config.get(k):
            raise ConfigError(f"{partial}: computed with {k} = {stored.get(k)!r}, this run has {k} = {config.get(k)!r}; "
                              f"use the same settings to resume, another --out, or delete {partial}")
    return {str(p): (e, b) for p, e, b in zip(paths, embs, boxes)}


def cmd_embed(args: argparse.Namespace) -> int:
    import tempfile

    import numpy as np
    from tqdm import tqdm

    from ..errors import StorageError
    from ..io.files import ensure_dir, save_npz_atomic, write_text_atomic

    pipe = pipeline_from_args(args)
    files, failures = _list_images(Path(args.folder))
    out = Path(args.out)
    ensure_dir(out.parent, "output folder")  # before any work
    if out.exists() and not out.is_file() and not out.is_dir():
        raise StorageError(f"{out}: exists and is not a regular file (a device, pipe or socket); expected a file path")
    partial = out.with_name(out.name + ".partial.npz")
    config = _embed_config(args, pipe)
    done: dict[str, Any] = {}
    if args.resume and partial.exists():
        done = _load_partial(partial, config) or {}
    todo = [f for f in files if str(f) not in done]

    def save(path: Path, with_config: bool) -> None:
        keys = sorted(done)
        extra = {"config": np.array(json.dumps(config, sort_keys=True))} if with_config else {}
        save_npz_atomic(path, paths=np.array(keys, dtype=str),
                        embeddings=np.stack([done[k][0] for k in keys]) if keys else np.zeros((0, pipe.model.spec.embedding_size), np.float32),
                        boxes=np.stack([done[k][1] for k in keys]) if keys else np.zeros((0, 4)), **extra)

    partial_fault: str | None = None
    for i, f in enumerate(tqdm(todo, desc="embed", unit="img", disable=args.quiet)):
        try:
            if args.all_faces:
                faces = pipe.align_all(f)
                if not faces:
                    raise NoFaceError(f"no face found in {f}")
                for k, (a, e) in enumerate(zip(faces, pipe.embed_aligned(faces))):
                    done[f"{f}#{k}"] = (e, a.face.box)
            else:
                a = pipe.align(f)
                done[str(f)] = (pipe.embed_aligned([a])[0], a.face.box if a.face is not None else np.zeros(4))
        except XaifaceError as e:
            failures[str(f)] = str(e)
        if (i + 1) % 100 == 0 and partial_fault is None:
            try:
                save(partial, True)
            except StorageError as e:  # the run goes on; the final save is tried as usual
                partial_fault = str(e)
                print(f"xaiface: warning: {e}; no partial file is kept while this lasts", file=sys.stderr)
    try:
        save(out, False)
    except StorageError as e:  # keep what was computed: the partial file, or one in the temporary folder
        kept = None
        for where in (partial, Path(tempfile.gettempdir()) / partial.name):
            try:
                save(where, True)
                kept = where
                break
            except StorageError:
                continue
        if kept is None:
            raise StorageError(f"{e}; the {len(done)} computed embeddings could not be kept anywhere") from None
        hint = (f"rerun the same command with --resume once {out} can be written" if kept == partial else
                f"move it to {partial} and rerun the same command with --resume once {out} can be written")
        raise StorageError(f"{e}; the {len(done)} computed embeddings are kept in {kept} ({hint})") from None
    write_text_atomic(out.with_name(out.name + ".failures.json"), json.dumps(failures, indent=2))
    if partial.exists():
        partial.unlink()
    print(json.dumps({"embedded": len(done), "failed": len(failures), "out": str(out)}))
    if failures:
        print(f"\n{len(failures)} file(s) failed:", file=sys.stderr)
        for k, v in failures.items():
            print(f"  {v}" if k in v else f"  {k}: {v}", file=sys.stderr)
        return 3
    return 0
