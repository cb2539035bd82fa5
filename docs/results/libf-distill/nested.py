"""Nested choice of the pair encoding on training folds only, for a `xaiface train libf` folder.

For each test fold k whose encoder and EBMs are trained: the nine training folds are split into
three groups of three (by fold number); each candidate encoding's EBM (the run's own settings) is
fitted on two groups and scored on the third, using fold k's LIBF features (its encoder never saw
fold k). The candidate with the best mean inner accuracy is the one reported for fold k, with its
accuracy on fold k from the run itself (result-<encoding>.json). Resumable: one JSON per fold.

    python docs/results/libf-distill/nested.py runs/libf-distill [folds...]
"""
import json, os, sys, time
import numpy as np

def main(root, folds):
    from xaiface.datasets import LFW
    from xaiface.libf.data import PatchBank
    from xaiface.libf.ebm import LIBFVerifier
    cfg = json.load(open(os.path.join(root, "config.json")))
    ebm = cfg["ebm"]
    cands = ("symmetric", "patch-cosine")
    bank = PatchBank.load(os.path.join(root, "patches.npz"))
    lfw = LFW(None); pairs = lfw.pairs(); idx = bank.index(); rel = lambda p: os.path.relpath(p, lfw.images_dir)
    pa = np.array([idx[rel(p.path_a)] for p in pairs]); pb = np.array([idx[rel(p.path_b)] for p in pairs])
    y = np.array([p.same for p in pairs], int); f0 = np.array([p.fold for p in pairs])
    dim = cfg.get("distill", cfg.get("byol"))["embedding_dim"]
    for k in folds:
        fd = os.path.join(root, f"fold-{k:02d}"); out = os.path.join(fd, "nested.json")
        if os.path.isfile(out) or not all(os.path.isfile(os.path.join(fd, f"result-{c}.json")) for c in cands):
            continue
        t0 = time.time()
        with np.load(os.path.join(fd, "libf.npz"), allow_pickle=False) as z:
            L = z["libf"]
        train = [f for f in range(10) if f != k - 1]
        groups = [train[i::3] for i in range(3)]
        inner = {}
        for c in cands:
            accs = []
            for g in groups:
                tr = np.isin(f0, train) & ~np.isin(f0, g); va = np.isin(f0, g)
                v = LIBFVerifier(c, interactions=ebm["interactions"], outer_bags=ebm["outer_bags"], max_bins=ebm["max_bins"],
                                 n_jobs=1, random_state=k, embedding_dim=dim).fit(L[pa[tr]], L[pb[tr]], y[tr])
                accs.append(float((v.predict(L[pa[va]], L[pb[va]]) == y[va]).mean()))
            inner[c] = accs
        chosen = max(cands, key=lambda c: np.mean(inner[c]))
        outer = {c: json.load(open(os.path.join(fd, f"result-{c}.json")))["accuracy"] for c in cands}
        json.dump({"fold": k, "inner_groups": [[f + 1 for f in g] for g in groups], "inner_accuracy": inner,
                   "chosen": chosen, "test_accuracy": outer[chosen], "test_accuracy_all": outer,
                   "seconds": round(time.time() - t0, 1)}, open(out, "w"), indent=1)
        print(k, chosen, {c: round(float(np.mean(a)), 4) for c, a in inner.items()}, outer, flush=True)
    done = [json.load(open(os.path.join(root, f"fold-{k:02d}", "nested.json"))) for k in range(1, 11)
            if os.path.isfile(os.path.join(root, f"fold-{k:02d}", "nested.json"))]
    if done:
        acc = np.array([d["test_accuracy"] for d in done])
        print(f"nested choice over {len(done)} folds: {100 * acc.mean():.2f}% +- {100 * acc.std():.2f}%;",
              {d["fold"]: d["chosen"] for d in done})

if __name__ == "__main__":
    import torch; torch.set_num_threads(1)
    main(sys.argv[1], [int(a) for a in sys.argv[2:]] or list(range(1, 11)))
