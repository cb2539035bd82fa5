"""How much margin the Levi-Hassner gender net wants around a face box: accuracy on 300 VIP_attribute photos.

VIP_attribute is not one of the sets the Levi-Hassner nets are evaluated on (LFW, UTKFace), so
the choice is not tuned on them. 300 photos drawn with ``numpy.random.default_rng(1)``; dlib HOG,
the face nearest the centre, the whole photo when none is found.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python scripts/levi_hassner_margin_check.py
"""
from __future__ import annotations

import numpy as np
import torch

MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4)


def main() -> None:
    from xaiface.datasets import VIPAttribute
    from xaiface.io import load_image
    from xaiface.pipeline.batch import locate_faces
    from xaiface.soft import levi_hassner as lh

    torch.set_num_threads(1)
    items = VIPAttribute(None).items()
    idx = np.random.default_rng(1).choice(len(items), size=min(300, len(items)), replace=False)
    items = [items[i] for i in sorted(idx)]
    paths = [str(it.path) for it in items]
    loc = locate_faces(paths, select="center", fallback="image", cache=True, progress=False, workers=1)
    predicted: dict[float, list[str]] = {m: [] for m in MARGINS}
    truth = []
    for it, p in zip(items, paths):
        face = loc.faces.get(p)
        if face is None:
            continue
        photo = load_image(p)
        truth.append(it.gender)
        probs = lh.probabilities("gender", np.stack([lh.face_crop(photo, face, m) for m in MARGINS]))
        for m, q in zip(MARGINS, probs):
            predicted[m].append("male" if q[0] >= q[1] else "female")
    t = np.array(truth)
    print(f"{len(t)} faces, {(t == 'male').sum()} male")
    for m in MARGINS:
        p = np.array(predicted[m])
        print(f"margin {m}: accuracy {(p == t).mean():.3f}, male {(p[t == 'male'] == 'male').mean():.3f}, "
              f"female {(p[t == 'female'] == 'female').mean():.3f}")


if __name__ == "__main__":
    main()
