import sys, json, time, numpy as np
sys.path.insert(0, "/work/main/src"); sys.path.insert(0, "/work/scratch")
import torch
from dataclasses import replace
from xaiface.datasets import LFW
from xaiface.libf.data import PatchBank
from xaiface.libf.byol import BYOLConfig, train_byol
from xaiface.libf.features import LIBFEncoder, pair_features
import metric
tag, steps, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.set_num_threads(1)
bank = PatchBank.load("/work/runs19/libf/patches.npz")
lfw = LFW(None); pairs = lfw.pairs()
pf = {p.name: p.fold for p in lfw.people()}
idf = np.array([pf[str(i)] for i in bank.identities])
idx = bank.index(); import os
rel = lambda p: os.path.relpath(p, lfw.images_dir)
pa = np.array([idx[rel(p.path_a)] for p in pairs]); pb = np.array([idx[rel(p.path_b)] for p in pairs])
y = np.array([p.same for p in pairs], int); f0 = np.array([p.fold for p in pairs])
rows = np.flatnonzero(~np.isin(idf, [0, 1]))
px = bank.pixels[rows].reshape(-1, 24, 24, 3)
if extra:
    eb = PatchBank.load("/work/runs19/libf/extra-patches.npz")
    px = np.concatenate([px, eb.pixels.reshape(-1, 24, 24, 3)])
cfg = replace(BYOLConfig(), epochs=steps // 50, seed=11)
t = time.time()
res = train_byol(px, cfg, f"/work/runs19/libf/explore-{tag}.ck", progress=False)
print(tag, "byol", time.time() - t, res.epoch_loss[-1], flush=True)
center = LIBFEncoder.centers_from(res.encoder, bank.pixels[rows[:2000]], bank.visible[rows[:2000]])
enc = LIBFEncoder(res.encoder, center, cfg)
L = enc.transform(bank.pixels, bank.visible)
np.save(f"/work/runs19/libf/explore-{tag}-libf.npy", L)
tr = ~np.isin(f0, [0, 1]); va = f0 == 1
m = metric.fit(L[rows], bank.identities[rows], None)
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
out = {}
for kind in ["symmetric", "cos", "wccn", "jb"]:
    if kind == "symmetric":
        X = pair_features(L[pa], L[pb], "symmetric")
    else:
        X = np.nan_to_num(metric.features(m, L[pa], L[pb], kind))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(X[tr], y[tr])
    acc_lr = float((clf.predict(X[va]) == y[va]).mean())
    from interpret.glassbox import ExplainableBoostingClassifier
    t = time.time()
    ebm = ExplainableBoostingClassifier(interactions=0 if kind=="symmetric" else 5, outer_bags=2, n_jobs=1, random_state=0).fit(X[tr], y[tr])
    acc_ebm = float((ebm.predict(X[va]) == y[va]).mean())
    out[kind] = (acc_lr, acc_ebm, round(time.time() - t, 1))
    print(tag, kind, out[kind], flush=True)
json.dump(out, open(f"/work/runs19/libf/explore-{tag}.json", "w"))
