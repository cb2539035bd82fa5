import sys, os, json, time, argparse
sys.path.insert(0, "/work/main/src"); sys.path.insert(0, "/work/scratch")
import numpy as np, torch
from xaiface.datasets import LFW
from xaiface.libf.data import PatchBank
import distil, metric
ap = argparse.ArgumentParser()
ap.add_argument("tag"); ap.add_argument("--steps", type=int, default=2000); ap.add_argument("--bs", type=int, default=64)
ap.add_argument("--width", type=int, default=16); ap.add_argument("--lam", type=float, default=1.0)
ap.add_argument("--aug", type=int, default=1); ap.add_argument("--lfw", type=int, default=1); ap.add_argument("--lr", type=float, default=3e-3); ap.add_argument("--center", type=int, default=1); ap.add_argument("--pca", type=int, default=0)
a = ap.parse_args()
R = "/work/runs19/libf"
bank = PatchBank.load(f"{R}/patches.npz"); eb = PatchBank.load(f"{R}/extra-patches.npz")
Tl = np.load(f"{R}/teacher-lfw.npy"); Te = np.load(f"{R}/teacher-extra.npy")
lfw = LFW(None); pairs = lfw.pairs()
pf = {p.name: p.fold for p in lfw.people()}
idf = np.array([pf[str(i)] for i in bank.identities])
idx = bank.index()
rel = lambda p: os.path.relpath(p, lfw.images_dir)
pa = np.array([idx[rel(p.path_a)] for p in pairs]); pb = np.array([idx[rel(p.path_b)] for p in pairs])
y = np.array([p.same for p in pairs], int); f0 = np.array([p.fold for p in pairs])
rows = np.flatnonzero(~np.isin(idf, [0, 1]))
px, vis, T = eb.pixels, eb.visible, Te
if a.lfw:
    px = np.concatenate([bank.pixels[rows], px]); vis = np.concatenate([bank.visible[rows], vis]); T = np.concatenate([Tl[rows], T])
T = T / np.linalg.norm(T, axis=1, keepdims=True)
if a.center:
    T = T - T.mean(0); T = T / np.linalg.norm(T, axis=1, keepdims=True)
if a.pca:
    _, _, Vt = np.linalg.svd(T - T.mean(0), full_matrices=False); T = (T - T.mean(0)) @ Vt[:a.pca].T; T = T / np.linalg.norm(T, axis=1, keepdims=True)
t = time.time()
model = distil.train(px, vis, T.astype(np.float32), a.steps, a.bs, a.width, a.lam, 11, a.aug, f"{R}/distil-{a.tag}.pt", lr=a.lr, head=not a.pca)
tt = time.time() - t
Z, Yh = distil.embed(model, bank.pixels)
V = bank.visible
np.savez(f"{R}/distil-{a.tag}-emb.npz", Z=Z, Y=Yh)
tr = ~np.isin(f0, [0, 1]); va = f0 == 1
def ncos(A, B):
    A = A / np.maximum(np.linalg.norm(A, axis=-1, keepdims=True), 1e-12); B = B / np.maximum(np.linalg.norm(B, axis=-1, keepdims=True), 1e-12)
    return (A * B).sum(-1)
vv = V[pa] & V[pb]
center = np.stack([Z[rows][V[rows][:, p], p].mean(0) for p in range(11)])
Zc = Z - center[None]
feats = {"cos_z": np.where(vv, ncos(Zc[pa], Zc[pb]), np.nan), "cos_y": np.where(vv, ncos(Yh[pa], Yh[pb]), np.nan)}
libf = np.concatenate([Zc / np.linalg.norm(Zc, axis=-1, keepdims=True) * V[..., None], V[..., None]], -1).reshape(len(Z), -1)
m = metric.fit(libf[rows], bank.identities[rows], None)
feats["jb"] = metric.features(m, libf[pa], libf[pb], "jb")
feats["cosy+jb"] = np.concatenate([feats["cos_y"], feats["jb"]], 1)
S = (Yh * V[..., None]).sum(1)
joint = ncos(S[pa], S[pb])
from sklearn.linear_model import LogisticRegression
thr_c = np.linspace(-1, 1, 2001); acc_tr = [((joint[tr] > c) == y[tr]).mean() for c in thr_c]; c = thr_c[int(np.argmax(acc_tr))]
out = {"train_s": tt, "n_train": len(px), "joint_cos_acc": float(((joint[va] > c) == y[va]).mean())}
print(a.tag, out, flush=True)
from interpret.glassbox import ExplainableBoostingClassifier
for k, X in feats.items():
    lr = LogisticRegression(max_iter=2000).fit(np.nan_to_num(X[tr]), y[tr])
    ebm = ExplainableBoostingClassifier(interactions=5, outer_bags=2, n_jobs=1, random_state=0).fit(X[tr], y[tr])
    out[k] = (float((lr.predict(np.nan_to_num(X[va])) == y[va]).mean()), float((ebm.predict(X[va]) == y[va]).mean()))
    print(a.tag, k, out[k], flush=True)
json.dump({**vars(a), **out}, open(f"{R}/distil-{a.tag}.json", "w"))
