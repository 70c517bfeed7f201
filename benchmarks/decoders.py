"""Single-thread decode + resize costs per JPEG, to choose the decoding strategy.

Compares, per target size: full decode then resize; libjpeg-turbo scaling by any
factor (k/8) then resize; power-of-two scaling (Pillow draft, or simplejpeg
limited to 1/2, 1/4, 1/8) then resize; each with Pillow's BILINEAR and BOX
filters. Prints microseconds per image (lower is better).

    python benchmarks/decoders.py --n 200 --sizes 224,128,64
"""
from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--sizes", default="224,128,64")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from pipeline import make_images, list_files  # the benchmark's own photo maker

    data = Path(args.out or tempfile.mkdtemp(prefix="kk-dec-"))
    make_images(data, args.n)
    blobs = [Path(p).read_bytes() for p, _ in list_files(data, args.n)]
    try:
        import simplejpeg
    except ImportError:
        simplejpeg = None

    def timeit(fn) -> float:
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            for b in blobs:
                fn(b)
            best = min(best, (time.perf_counter() - t) / len(blobs))
        return best * 1e6

    for size in [int(s) for s in args.sizes.split(",")]:
        rows = {}
        for fname, filt in (("bilinear", Image.BILINEAR), ("box", Image.BOX)):
            def pil_full(b, filt=filt):
                np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize((size, size), filt))

            def pil_draft(b, filt=filt):
                im = Image.open(io.BytesIO(b))
                im.draft("RGB", (size, size))
                np.asarray(im.convert("RGB").resize((size, size), filt))
            rows[f"pillow full decode + {fname}"] = timeit(pil_full)
            rows[f"pillow draft (1/2,1/4,1/8) + {fname}"] = timeit(pil_draft)
            if simplejpeg is not None:
                def sj_full(b, filt=filt):
                    np.asarray(Image.fromarray(simplejpeg.decode_jpeg(b)).resize((size, size), filt))

                def sj_any(b, filt=filt):
                    a = simplejpeg.decode_jpeg(b, min_height=size, min_width=size)
                    np.asarray(Image.fromarray(a).resize((size, size), filt))

                def sj_pow2(b, filt=filt):
                    h, w, _, _ = simplejpeg.decode_jpeg_header(b)
                    f = 1
                    while f < 8 and h / (2 * f) >= size and w / (2 * f) >= size:
                        f *= 2
                    a = simplejpeg.decode_jpeg(b, min_height=math.ceil(h / f), min_width=math.ceil(w / f))
                    np.asarray(Image.fromarray(a).resize((size, size), filt))
                rows[f"simplejpeg full decode + {fname}"] = timeit(sj_full)
                rows[f"simplejpeg any k/8 scale + {fname}"] = timeit(sj_any)
                rows[f"simplejpeg 1/2,1/4,1/8 scale + {fname}"] = timeit(sj_pow2)
        print(f"\nsize {size}: us per image, one thread")
        for k, v in sorted(rows.items(), key=lambda kv: kv[1]):
            print(f"  {v:7.0f}  {k}")


if __name__ == "__main__":
    main()
