"""``xaiface models``: the registered face models and detectors."""
from __future__ import annotations

import argparse
import json


def cmd_models(args: argparse.Namespace) -> int:
    from ..detect.base import detector_description, list_detectors
    from ..models.registry import list_models, model_spec

    rows = []
    for name in list_models(args.pattern):
        s = model_spec(name)
        p = s.preprocessing
        rows.append({
            "name": name, "architecture": s.architecture, "embedding_size": s.embedding_size,
            "input": f"{p.input_size}x{p.input_size} {p.color_order} ({p.geometry})",
            "weights": "user file required" if s.weights_required else "packaged",
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
