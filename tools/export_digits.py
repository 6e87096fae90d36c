"""Export scikit-learn's 8x8 digits (1,797 real handwritten digits that ship inside the package) as a folder of PNG
files with one subfolder per class, the layout `pipeline-vae train --data FOLDER` reads.

    python tools/export_digits.py data/digits          # data/digits/0/0000.png ... data/digits/9/1796.png

The 17 grey levels (0..16) are scaled to 0..255 (round(v * 255 / 16)). The folder is written under a temporary name
and renamed when complete; an existing folder is refused (nothing is overwritten).
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np


def export_digits(out_dir: str) -> int:
    """Write the digits to `out_dir/<label>/<index>.png`; returns how many were written.

    Raises:
        FileExistsError: If `out_dir` exists.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    if os.path.exists(out_dir):
        raise FileExistsError(f"{out_dir} exists; remove it or choose another folder")
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".digits-", dir=parent)
    try:
        for index, (image, label) in enumerate(zip(images, digits.target)):
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
    parser.add_argument("out_dir", help="the folder to create")
    args = parser.parse_args(argv)
    try:
        count = export_digits(args.out_dir)
    except FileExistsError as err:
        print(f"export_digits: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {count} PNG files (8x8, grey, classes 0-9) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
