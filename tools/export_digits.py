"""Export scikit-learn's 8x8 digits (1,797 real handwritten digits that ship inside the package) as a folder of PNG
files with one subfolder per class, the layout `pipeline-vae train --data FOLDER` reads.

    python tools/export_digits.py data/digits          # data/digits/0/0000.png ... data/digits/9/1796.png
    python tools/export_digits.py digits.npz           # one .npz: x uint8 [1797, 8, 8] and labels y

The 17 grey levels (0..16) are scaled to 0..255 (round(v * 255 / 16)). The folder (or file) is written under a
temporary name and renamed when complete; an existing one is refused (nothing is overwritten). `pipeline-vae train
--data digits.npz` splits the `.npz`'s single `x` 90/10 (`--test-fraction`).
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np


def _digits():
    from sklearn.datasets import load_digits
    digits = load_digits()
    return np.round(digits.images * (255.0 / 16.0)).astype(np.uint8), digits.target.astype(np.int64)


def export_digits_npz(path: str) -> int:
    """Write the digits to one `.npz` (`x`: uint8 [N, 8, 8], `y`: labels); returns how many were written.

    Raises:
        FileExistsError: If `path` exists.
    """
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; remove it or choose another file")
    from pipeline_vae.atomic import atomic_path
    images, labels = _digits()
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, x=images, y=labels)
    return len(images)


def export_digits(out_dir: str) -> int:
    """Write the digits to `out_dir/<label>/<index>.png`; returns how many were written.

    Raises:
        FileExistsError: If `out_dir` exists.
    """
    from PIL import Image

    if os.path.exists(out_dir):
        raise FileExistsError(f"{out_dir} exists; remove it or choose another folder")
    images, labels = _digits()
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".digits-", dir=parent)
    try:
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = os.path.join(tmp, str(int(label)))
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image, mode="L").save(os.path.join(folder, f"{index:04d}.png"))
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="the folder to create (class subfolders of PNGs), or a file ending in .npz")
    args = parser.parse_args(argv)
    npz = args.out_dir.endswith(".npz")
    try:
        count = (export_digits_npz if npz else export_digits)(args.out_dir)
    except FileExistsError as err:
        print(f"export_digits: error: {err}", file=sys.stderr)
        return 2
    what = "images (x: uint8 [N, 8, 8], labels y)" if npz else "PNG files (8x8, grey, classes 0-9)"
    print(f"wrote {count} {what} to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
