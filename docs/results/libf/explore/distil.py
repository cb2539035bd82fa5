"""Distil the dlib teacher embedding into the per-patch 16-d encoder (validation on fold 2)."""
import sys, os, json, time, math, argparse
sys.path.insert(0, "/work/main/src"); sys.path.insert(0, "/work/scratch")
import numpy as np, torch, torch.nn.functional as F
from torch import nn
from xaiface.libf.byol import PatchEncoder

def light_aug(x, g):
    b = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=g)
    s = u(0.9, 1.05); th = u(-6, 6) * math.pi / 180; tx, ty = u(-0.08, 0.08), u(-0.08, 0.08)
    c, si = torch.cos(th) * s, torch.sin(th) * s
    theta = torch.stack([torch.stack([c, -si, tx], 1), torch.stack([si, c, ty], 1)], 1)
    y = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="reflection", align_corners=False)
    bri = u(0.75, 1.25)[:, None, None, None]; con = u(0.75, 1.25)[:, None, None, None]
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - m) * con + m) * bri
    grey = (torch.rand(b, generator=g) < 0.15).float()[:, None, None, None]
    gy = (0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3]).expand_as(y)
    return (grey * gy + (1 - grey) * y).clamp(0, 1)

class Student(nn.Module):
    def __init__(self, dim=16, width=16, tdim=128, head=True):
        super().__init__()
        self.head = head
        self.enc = PatchEncoder(dim, width)
        self.W = nn.Parameter(torch.randn(11, dim, tdim) / math.sqrt(dim))
        self.b = nn.Parameter(torch.zeros(11, tdim))
    def forward(self, x):  # x (B,11,3,P,P)
        B = x.shape[0]
        z = self.enc(x.flatten(0, 1)).view(B, 11, -1)
        y = torch.einsum("bpd,pdt->bpt", z, self.W) + self.b if self.head else z
        return z, y

def train(px, vis, T, steps, bs, width, lam, seed, aug, ck, lr=3e-3, threads=1, head=True):
    torch.set_num_threads(threads); torch.manual_seed(seed)
    model = Student(16, width, T.shape[1], head); opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed); g = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(px); V = torch.from_numpy(vis).float(); TT = torch.from_numpy(T)
    t0 = time.time(); hist = []
    for step in range(steps):
        warm = max(1, steps // 20)
        cur = lr * (step + 1) / warm if step < warm else lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (steps - warm)))
        for gr in opt.param_groups: gr["lr"] = cur
        idx = torch.from_numpy(rng.integers(0, len(px), bs))
        x = data[idx].permute(0, 1, 4, 2, 3).float() / 255  # B,11,3,P,P
        if aug:
            x = light_aug(x.flatten(0, 1), g).view_as(x)
        z, y = model(x)
        t = TT[idx]; v = V[idx]
        cp = (F.normalize(y, dim=-1) * t[:, None]).sum(-1)  # B,11
        lp = ((1 - cp) * v).sum() / v.sum()
        s = (y * v[..., None]).sum(1)
        lj = (1 - (F.normalize(s, dim=-1) * t).sum(-1)).mean()
        loss = lp + lam * lj
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        hist.append((float(lp.detach()), float(lj.detach())))
        if (step + 1) % 250 == 0:
            h = np.mean(hist[-250:], 0)
            print(f"step {step+1} lp {h[0]:.4f} lj {h[1]:.4f} {time.time()-t0:.0f}s", flush=True)
    torch.save(model.state_dict(), ck)
    return model.eval()

@torch.inference_mode()
def embed(model, px, bs=256):
    Z, Y = [], []
    for i in range(0, len(px), bs):
        x = torch.from_numpy(px[i:i+bs]).permute(0, 1, 4, 2, 3).float() / 255
        z, y = model(x); Z.append(z.numpy()); Y.append(y.numpy())
    return np.concatenate(Z), np.concatenate(Y)
