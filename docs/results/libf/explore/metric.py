import numpy as np
def per_patch(libf, D=16):
    n=len(libf); z=libf.reshape(n,11,D+1); return z[...,:D].astype(np.float64), z[...,D]>0.5
def class_stats(X, ids):
    u, inv = np.unique(ids, return_inverse=True)
    cnt = np.bincount(inv); keep = cnt[inv] >= 2
    X, inv = X[keep], inv[keep]
    mu = np.zeros((len(u), X.shape[1])); np.add.at(mu, inv, X); c=np.bincount(inv, minlength=len(u)); ok=c>0
    mu[ok] /= c[ok,None]
    R = X - mu[inv]
    Sw = R.T@R/max(len(X)-ok.sum(),1)
    M = mu[ok]; Sb = np.cov(M.T, bias=True)
    return Sw, Sb
def wccn(Sw, shrink=1e-3):
    Sw = Sw + shrink*np.trace(Sw)/len(Sw)*np.eye(len(Sw))
    w, V = np.linalg.eigh(Sw); return V@np.diag(w**-0.5)@V.T
def jb(Sw, Sb, shrink=1e-3):
    d=len(Sw); I=np.eye(d)
    Se = Sw + shrink*np.trace(Sw)/d*I; Sm = Sb + shrink*np.trace(Sb)/d*I
    F = np.linalg.inv(Se)
    G = -np.linalg.inv(2*Sm+Se)@Sm@F
    A = np.linalg.inv(Sm+Se) - (F+G)
    return A, G
def fit(libf, ids, vis_rows, D=16):
    X, V = per_patch(libf, D)
    out=[]
    for p in range(11):
        r = V[:,p]
        Sw, Sb = class_stats(X[r,p], ids[r])
        out.append(dict(W=wccn(Sw), A_G=jb(Sw,Sb)))
    return out
def features(m, la, lb, kind, D=16):
    Xa, Va = per_patch(la, D); Xb, Vb = per_patch(lb, D)
    cols=[]
    for p in range(11):
        a, b = Xa[:,p], Xb[:,p]; vis = (Va[:,p]&Vb[:,p]).astype(float)
        if kind=="cos":
            s = (a*b).sum(1)
        elif kind=="wccn":
            ya=a@m[p]["W"].T; yb=b@m[p]["W"].T
            s=(ya*yb).sum(1)/np.maximum(np.linalg.norm(ya,axis=1)*np.linalg.norm(yb,axis=1),1e-12)
        elif kind=="jb":
            A,G=m[p]["A_G"]; s=np.einsum('ij,jk,ik->i',a,A,a)+np.einsum('ij,jk,ik->i',b,A,b)-2*np.einsum('ij,jk,ik->i',a,G,b)
        cols.append(np.where(vis>0, s, np.nan))
    return np.stack(cols,1)
