import sys, glob, time, os
sys.path.insert(0, "/work/main/src")
import numpy as np
def main():
    import torch; torch.set_num_threads(2)
    from xaiface.datasets import LFW
    from xaiface.libf.data import build_patch_bank
    from xaiface.pipeline.batch import locate_faces, embed_faces
    from xaiface.models import get_model
    t = time.time()
    lfw = LFW(None); pairs = lfw.pairs()
    paths = [str(p) for p in dict.fromkeys(x for p in pairs for x in (p.path_a, p.path_b))]
    b = build_patch_bank(paths, lfw.images_dir, out="/work/runs19/libf/patches.npz", progress=False)
    print("lfw bank", len(b), time.time()-t, flush=True)
    d = "/work/shared/data"
    ex = sorted(glob.glob(d+"/utkface/images/*.jpg"))+sorted(glob.glob(d+"/vip_attribute/images/*.jpg"))
    b2 = build_patch_bank(ex, d, out="/work/runs19/libf/extra-patches.npz", progress=False)
    print("extra bank", len(b2), time.time()-t, flush=True)
    m = get_model("dlib-resnet")
    for tag, ps in (("lfw", paths), ("extra", ex)):
        loc = locate_faces(ps, detector="dlib-hog", select="center", fallback="median", progress=False)
        e = embed_faces(m, loc.faces, store=False, progress=False)
        v = e.vectors(ps, flip=True)
        np.save(f"/work/runs19/libf/teacher-{tag}.npy", v.astype(np.float32))
        print("teacher", tag, v.shape, time.time()-t, flush=True)
if __name__ == "__main__":
    main()
