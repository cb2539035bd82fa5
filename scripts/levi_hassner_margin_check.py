import numpy as np, torch, time, sys
torch.set_num_threads(1)
from xaiface.datasets import VIPAttribute
from xaiface.pipeline.batch import locate_faces
from xaiface.io import load_image
from xaiface.soft import levi_hassner as lh
def main():
    items = VIPAttribute(None).items()
    rng = np.random.default_rng(1); idx = rng.choice(len(items), size=min(300, len(items)), replace=False)
    items = [items[i] for i in sorted(idx)]
    paths = [str(it.path) for it in items]
    loc = locate_faces(paths, select="center", fallback="image", cache=True, progress=False, workers=1)
    margins = (0.0, 0.1, 0.2, 0.3, 0.4)
    res = {m: [] for m in margins}; truth = []
    for it, p in zip(items, paths):
        f = loc.faces.get(p) if hasattr(loc.faces, 'get') else loc.faces[p]
        if f is None: continue
        photo = load_image(p); truth.append(it.gender)
        crops = np.stack([lh.face_crop(photo, f, m) for m in margins])
        pr = lh.probabilities("gender", crops)
        for m, q in zip(margins, pr): res[m].append("male" if q[0] >= q[1] else "female")
    t = np.array(truth); print(len(t), "male", (t=="male").sum())
    for m in margins:
        p = np.array(res[m]); print(m, "acc %.3f male %.3f female %.3f" % ((p==t).mean(), (p[t=="male"]=="male").mean(), (p[t=="female"]=="female").mean()))
    
if __name__ == "__main__":
    main()
