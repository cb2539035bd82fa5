"""Helpers of the soft-biometrics tests (imported by the test modules)."""
from __future__ import annotations

import numpy as np

#: LFW images with an unambiguous gender label whose faces the HOG detector finds
LABELLED_FACES = {
    "Abel_Pacheco_0001.jpg": "male", "Aaron_Peirsol_0001.jpg": "male",
    "Serena_Williams_0001.jpg": "female", "Angelina_Jolie_0001.jpg": "female",
}


def synthetic_embeddings(n_id: int = 120, per: int = 4, d: int = 32, seed: int = 0):
    """Unit embeddings: an identity vector, a strong gender offset and noise; (X, gender, identity)."""
    rng = np.random.default_rng(seed)
    ids = rng.normal(size=(n_id, d))
    g = rng.integers(0, 2, n_id)
    gdir = rng.normal(size=d)
    gdir /= np.linalg.norm(gdir)
    X, G, P = [], [], []
    for i in range(n_id):
        for _ in range(per):
            x = ids[i] / np.sqrt(d) + (2 * g[i] - 1) * gdir * 0.5 + 0.25 * rng.normal(size=d) / np.sqrt(d)
            X.append(x / np.linalg.norm(x))
            G.append(g[i])
            P.append(i)
    return np.array(X, np.float32), np.array(G), np.array(P)
