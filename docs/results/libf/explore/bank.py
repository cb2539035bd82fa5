import sys, os, glob, time
sys.path.insert(0, "src")
from xaiface.datasets import LFW
def main():
    from xaiface.libf.data import build_patch_bank
    t=time.time()
    lfw = LFW("/work/shared/data/lfw" if False else None)
    pairs = lfw.pairs()
    paths = [str(p) for p in dict.fromkeys(x for p in pairs for x in (p.path_a, p.path_b))]
    b = build_patch_bank(paths, lfw.images_dir, out="/work/runs19/libf/patches.npz", progress=False)
    print("lfw", len(b), time.time()-t, flush=True)
    d="/work/shared/data"
    ex = sorted(glob.glob(d+"/utkface/images/*.jpg"))+sorted(glob.glob(d+"/vip_attribute/images/*.jpg"))
    import numpy as np
    from xaiface.pipeline.batch import locate_faces
    b2 = build_patch_bank(ex, d, out="/work/runs19/libf/extra-patches.npz", progress=False)
    print("extra", len(b2), time.time()-t, flush=True)
    
if __name__=="__main__":
    main()
