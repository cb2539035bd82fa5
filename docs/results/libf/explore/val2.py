import sys, os, json, time, argparse
sys.path.insert(0, "/work/main/src")
import numpy as np, torch
from xaiface.datasets import LFW
from xaiface.libf.data import PatchBank
from xaiface.libf.distill import DistillConfig, train_distilled
from xaiface.libf.features import LIBFEncoder, pair_features
from xaiface.libf.ebm import LIBFVerifier
ap = argparse.ArgumentParser(); ap.add_argument("tag"); ap.add_argument("--epochs", type=int, default=12); ap.add_argument("--lfw", type=int, default=1)
a = ap.parse_args()
R = "/work/runs19/libf"
bank = PatchBank.load(f"{R}/patches.npz"); eb = PatchBank.load(f"{R}/extra-patches.npz")
Tl = np.load(f"{R}/teacher-lfw.npy"); Te = np.load(f"{R}/teacher-extra.npy")
lfw = LFW(None); pairs = lfw.pairs(); pf = {p.name: p.fold for p in lfw.people()}
idf = np.array([pf[str(i)] for i in bank.identities]); idx = bank.index(); rel = lambda p: os.path.relpath(p, lfw.images_dir)
pa = np.array([idx[rel(p.path_a)] for p in pairs]); pb = np.array([idx[rel(p.path_b)] for p in pairs])
y = np.array([p.same for p in pairs], int); f0 = np.array([p.fold for p in pairs])
rows = np.flatnonzero(~np.isin(idf, [0, 1]))
px, vis, T = eb.pixels, eb.visible, Te
if a.lfw:
    px = np.concatenate([bank.pixels[rows], px]); vis = np.concatenate([bank.visible[rows], vis]); T = np.concatenate([Tl[rows], T])
cfg = DistillConfig(epochs=a.epochs, seed=11)
res = train_distilled(px, vis, T, cfg, f"{R}/val2-{a.tag}.ck", progress=False, threads=1, on_epoch=lambda e, l: print(e, round(l, 4), flush=True))
print("seconds", res.seconds, flush=True)
ecfg = cfg.encoder_config()
center = LIBFEncoder.centers_from(res.encoder, px[:2000], vis[:2000], res.projection)
enc = LIBFEncoder(res.encoder, center, ecfg, projection=res.projection)
L = enc.transform(bank.pixels, bank.visible)
np.save(f"{R}/val2-{a.tag}-libf.npy", L)
tr = ~np.isin(f0, [0, 1]); va = f0 == 1
out = {"seconds": res.seconds}
for e in ["patch-cosine", "symmetric"]:
    v = LIBFVerifier(e, interactions=5, outer_bags=2, n_jobs=1, random_state=2).fit(L[pa[tr]], L[pb[tr]], y[tr])
    out[e] = float((v.predict(L[pa[va]], L[pb[va]]) == y[va]).mean()); print(e, out[e], v.fit_seconds_, flush=True)
json.dump(out, open(f"{R}/val2-{a.tag}.json", "w"))
