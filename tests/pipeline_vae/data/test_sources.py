"""Every data source into ImageData, and every bad input as one clear line. Expected pixels come from PIL (an
independent decoder) or hand-built arrays, not from the code under test."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline_vae.data import DataError, DataSource, ImageData, load_data
from pipeline_vae.data.decode import decode_files
from pipeline_vae.data.pipeline import datasets
from pipeline_vae.resolve import default_binarize_threshold, default_likelihood

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _save(path, array, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _grey(rng, h=10, w=12):
    return rng.integers(0, 256, (h, w), dtype=np.uint8)


@pytest.fixture
def class_folder(tmp_path):
    """20 grey 10x12 PNGs in class subfolders 'cat' (8) and 'dog' (12)."""
    rng = np.random.default_rng(0)
    for i in range(20):
        _save(str(tmp_path / "pics" / ("cat" if i < 8 else "dog") / f"{i:02d}.png"), _grey(rng))
    return str(tmp_path / "pics")


def test_a_folder_with_class_subfolders_gives_labels_and_a_seeded_split(class_folder):
    data = load_data(DataSource(class_folder, test_fraction=0.25, split_seed=3))
    assert data.image_shape == (10, 12, 1) and data.kind == "folder" and data.class_names == ("cat", "dog")
    assert (len(data.train), len(data.test)) == (15, 5)
    assert not set(data.train.files) & set(data.test.files)
    expected = [0 if os.sep + "cat" + os.sep in f else 1 for f in data.test.files]
    assert data.test.y.tolist() == expected
    again = load_data(DataSource(class_folder, test_fraction=0.25, split_seed=3))
    assert again.test.files == data.test.files
    assert load_data(DataSource(class_folder, test_fraction=0.25, split_seed=4)).test.files != data.test.files
    # pixels decoded by tf.data equal PIL's
    pil = np.stack([np.asarray(Image.open(f)) for f in data.test.files])[..., None]
    np.testing.assert_array_equal(data.test_images(), pil)
    train_pil = np.stack([np.asarray(Image.open(f)) for f in data.train.files[:2]])[..., None]
    np.testing.assert_array_equal(data.train_images(2), train_pil)
    assert default_likelihood(data) == "discretized_logistic"
    assert default_binarize_threshold(data, default_likelihood(data)) is None


def test_train_and_test_subfolders_are_the_splits(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 3)):
        for i in range(n):
            _save(str(tmp_path / "d" / split / f"{i}.png"), _grey(rng, 8, 8))
    data = load_data(str(tmp_path / "d"))
    assert (len(data.train), len(data.test)) == (6, 3) and not data.has_labels
    assert all(os.sep + "test" + os.sep in f for f in data.test.files)


def test_rgb_files_stay_rgb_and_convert_to_grey_on_request(tmp_path):
    rng = np.random.default_rng(2)
    rgb = [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8) for _ in range(10)]
    for i, image in enumerate(rgb):
        _save(str(tmp_path / "c" / f"{i}.png"), image)
    data = load_data(DataSource(str(tmp_path / "c"), test_fraction=0.2))
    assert data.image_shape == (9, 7, 3)
    order = [int(os.path.basename(f)[:-4]) for f in data.test.files]
    np.testing.assert_array_equal(data.test_images(), np.stack([rgb[i] for i in order]))
    grey = load_data(DataSource(str(tmp_path / "c"), channels=1, test_fraction=0.2))
    luma = np.stack([rgb[i].astype(np.float64) @ [0.2989, 0.587, 0.114] for i in order])[..., None]
    assert grey.image_shape == (9, 7, 1)
    assert np.abs(grey.test_images().astype(np.float64) - luma).max() <= 1.0  # ITU-R 601, rounded


def test_grey_files_become_rgb_with_three_equal_channels(class_folder):
    data = load_data(DataSource(class_folder, channels=3))
    x = data.test_images()
    assert x.shape[1:] == (10, 12, 3) and np.array_equal(x[..., 0], x[..., 2])


def test_mixed_sizes_are_resized_when_asked_and_refused_otherwise(tmp_path):
    _save(str(tmp_path / "m" / "a.png"), np.full((8, 8), 200, np.uint8))
    _save(str(tmp_path / "m" / "b.png"), np.full((16, 12), 40, np.uint8))
    _save(str(tmp_path / "m" / "c.png"), np.full((8, 8), 90, np.uint8))
    with pytest.raises(DataError, match=r"images in .* differ in size \(.*a.png is 8x8, .*b.png is 16x12\); pass "
                       r"--image-size H W"):
        load_data(str(tmp_path / "m"))
    data = load_data(DataSource(str(tmp_path / "m"), image_size=(6, 5), test_fraction=0.34))
    files = data.train.files + data.test.files
    images = decode_files(files, data.image_shape, resize=True)
    assert data.image_shape == (6, 5, 1) and images.shape == (3, 6, 5, 1)
    for path, image in zip(files, images):  # a constant image stays that constant after resizing
        assert np.all(image == {"a.png": 200, "b.png": 40, "c.png": 90}[os.path.basename(path)])


def test_bmp_and_jpeg_files_are_read(tmp_path):
    image = np.tile(np.arange(0, 240, 20, dtype=np.uint8), (12, 1))
    _save(str(tmp_path / "f" / "a.bmp"), image, "BMP")
    _save(str(tmp_path / "f" / "b.jpg"), image, "JPEG")
    _save(str(tmp_path / "f" / "c.png"), image)
    data = load_data(DataSource(str(tmp_path / "f"), test_fraction=0.5))
    assert data.image_shape == (12, 12, 1) and len(data.train) + len(data.test) == 3
    both = DataSource(str(tmp_path / "f"), test_fraction=0.5)
    every = np.concatenate([x["x"].numpy() for x in datasets(load_data(both), 8)[1]])
    for decoded, path in zip(every, load_data(both).test.files):
        tolerance = 8 if path.endswith(".jpg") else 0  # JPEG is lossy
        assert np.abs(decoded[..., 0].astype(int) - image.astype(int)).max() <= tolerance, path


def test_npz_with_its_own_split_labels_and_colour(tmp_path):
    rng = np.random.default_rng(3)
    x_train, x_test = (rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8) for n in (12, 4))
    path = str(tmp_path / "set.npz")
    np.savez(path, x_train=x_train, x_test=x_test, y_train=np.arange(12) % 3, y_test=np.arange(4) % 3)
    data = load_data(path)
    assert data.kind == "npz" and data.image_shape == (6, 5, 3) and data.has_labels
    np.testing.assert_array_equal(data.test_images(), x_test)
    assert data.test_labels().tolist() == [0, 1, 2, 0]
    train, _ = datasets(data, 12)
    assert sorted(map(bytes, next(iter(train))["x"].numpy())) == sorted(map(bytes, x_train))  # shuffled, all there


def test_npz_with_one_float_array_is_split_and_quantized(tmp_path):
    x = np.random.default_rng(4).random((50, 4, 4)).astype(np.float32)
    path = str(tmp_path / "one.npz")
    np.savez(path, x=x, y=np.arange(50))
    data = load_data(DataSource(path, test_fraction=0.2, split_seed=0))
    assert (len(data.train), len(data.test)) == (40, 10) and data.image_shape == (4, 4, 1)
    index = data.test.y  # the labels are the original positions
    np.testing.assert_array_equal(data.test_images()[..., 0], np.round(x[index].astype(np.float64) * 255))
    assert sorted(data.train.y.tolist() + index.tolist()) == list(range(50))
    assert np.any(np.diff(index) < 0)  # the test split keeps the seeded random order (plots show its first images)


def test_black_and_white_images_default_to_bernoulli(tmp_path):
    x = (np.random.default_rng(5).random((20, 5, 5)) > 0.5).astype(np.uint8) * 255
    np.savez(tmp_path / "bw.npz", x=x)
    data = load_data(str(tmp_path / "bw.npz"))
    assert data.binary and default_likelihood(data) == "bernoulli"
    assert default_binarize_threshold(data, "bernoulli") is None


def test_an_npz_holding_mnist_is_mnist(mnist_path):
    data = load_data(mnist_path)
    assert data.kind == "mnist" and default_likelihood(data) == "bernoulli"
    assert default_binarize_threshold(data, "bernoulli") == 0.5
    assert default_binarize_threshold(data, "gaussian") is None
    assert data.image_shape == (28, 28, 1) and data.class_names == tuple("0123456789")


def test_keras_sets_are_fetched_into_the_cache_or_say_how_to_pass_the_files(tmp_path, monkeypatch):
    """Without `fetch` (what get_estimator does) an uncached set is one line saying what to run. With it, offline (as
    here) the download fails with one line naming the way out; online the set loads and is cached."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"fashion_mnist is not fetched yet; run `pipeline-vae data --data "
                       r"fashion_mnist`"):
        load_data("fashion_mnist", fetch=False)
    try:
        data = load_data("fashion_mnist", log=lambda line: None)
    except DataError as err:
        assert "could not download fashion_mnist with tf.keras.datasets" in str(err)
        assert "--data FILE.npz" in str(err) and "\n" not in str(err)
        assert not (tmp_path / "cache").exists()  # nothing half-written
    else:
        assert data.image_shape == (28, 28, 1) and len(data.train) == 60000 and data.kind == "keras"
        assert load_data("fashion_mnist", fetch=False).test_labels()[:3].tolist() == data.test_labels()[:3].tolist()


def test_a_cached_keras_set_is_read_without_a_download(tmp_path, monkeypatch):
    """The cache format is Keras' arrays as an .npz (here a stand-in with CIFAR's shapes and [N, 1] labels)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "pipeline_vae").mkdir()
    x = np.random.default_rng(7).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "pipeline_vae" / "cifar10.npz", x_train=x, y_train=np.arange(5)[:, None], x_test=x[:2],
             y_test=np.array([[3], [4]]))
    data = load_data("cifar10", fetch=False)
    assert data.kind == "keras" and data.image_shape == (32, 32, 3) and data.test_labels().tolist() == [3, 4]
    assert data.source.data == "cifar10"  # what the run's configuration records


def test_arrays_from_memory(small_mnist):
    data = ImageData.from_arrays(small_mnist.x_train, small_mnist.x_test)
    assert data.image_shape == (28, 28, 1) and not data.has_labels and data.kind == "arrays"
    with pytest.raises(DataError, match="'arrays' were handed over in memory and cannot be loaded again"):
        load_data(data.source)


# ------------------------------------------------------------------------------------------------------ bad input
def _write_npz(tmp_path, **arrays):
    path = str(tmp_path / "bad.npz")
    np.savez(path, **arrays)
    return path


U8 = np.zeros((6, 4, 4), np.uint8)


@pytest.mark.parametrize("arrays, message", [
    (dict(images=U8), r"has keys images; expected x_train and x_test \(optional y_train, y_test\), or x"),
    (dict(x_train=U8, x_test=np.zeros((2, 5, 4), np.uint8)), r"x_test: images are 5x4x1 but x_train's are 4x4x1"),
    (dict(x_train=U8, x_test=np.zeros((2, 4, 4, 3), np.uint8)), r"x_test: images are 4x4x3 but x_train's are 4x4x1"),
    (dict(x=U8, y=np.arange(5)), r"y: 5 labels for 6 images"),
    (dict(x_train=U8, x_test=U8, y_train=np.arange(5), y_test=np.arange(6)),
     r"y_train: expected shape \(6,\) to match the images, got \(5,\)"),
    (dict(x_train=U8, x_test=U8, y_train=np.arange(6)), "labels: give both y_train and y_test, or neither"),
    (dict(x=np.full((6, 4, 4), 300, np.int32)), r"x: integer values must be in 0..255, got 300..300"),
    (dict(x=np.full((6, 4, 4), 1.5, np.float32)), r"x: float values must be in 0..1, got 1.5..1.5"),
    (dict(x=np.full((6, 4, 4), np.nan, np.float32)), "x: contains NaN or Inf"),
    (dict(x=np.full((6, 4, 4), np.inf, np.float32)), "x: contains NaN or Inf"),
    (dict(x=np.zeros((6, 4, 4, 2), np.uint8)), r"x: expected images \[N, H, W\] or \[N, H, W, C\] \(C = 1 or 3\)"),
    (dict(x_train=np.zeros((0, 4, 4), np.uint8), x_test=U8), "x_train: is empty"),
    (dict(x=np.zeros((4, 4, 4), np.uint8)), "test_fraction: .* has 4 images; holding out 0.1 of them leaves an "
     "empty test split; use a larger --test-fraction"),
])
def test_bad_npz_is_one_line_naming_the_problem(tmp_path, arrays, message):
    path = _write_npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as err:
        load_data(path)
    assert "\n" not in str(err.value)


def test_unreadable_npz_and_unknown_sources(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=r"broken.npz is not a readable .npz"):
        load_data(str(tmp_path / "broken.npz"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"notes.txt is not an .npz file; expected 'mnist', fashion_mnist"):
        load_data(str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match=r"data: cifar11 is not a known data set, file or folder"):
        load_data("cifar11")
    with pytest.raises(DataError, match=r"missing.npz does not exist"):
        load_data(str(tmp_path / "missing.npz"))
    with pytest.raises(DataError, match=r"channels must be None \(follow the data\), 1 \(grey\) or 3 \(RGB\)"):
        load_data(DataSource(str(tmp_path), channels=2))


def test_bad_folders_name_the_folder_or_the_file(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"folder .*empty holds no image files \(.png, .jpg, .jpeg, .bmp\), searched "
                       "recursively"):
        load_data(str(tmp_path / "empty"))
    rng = np.random.default_rng(6)
    for i in range(5):
        _save(str(tmp_path / "bad" / f"{i}.png"), _grey(rng, 8, 8))
    (tmp_path / "bad" / "3.png").write_bytes(b"\x89PNG not an image at all")
    with pytest.raises(DataError, match=r"data: .*bad/3.png is not a readable image"):
        load_data(str(tmp_path / "bad"))
    good = (tmp_path / "bad" / "2.png").read_bytes()
    (tmp_path / "bad" / "3.png").write_bytes(good[:len(good) - 30])  # truncated: header fine, data cut
    with pytest.raises(DataError, match=r"data: .*bad/3.png is not a readable image"):
        load_data(str(tmp_path / "bad"))
    (tmp_path / "bad" / "3.png").unlink()
    with pytest.raises(DataError, match=r"test_fraction: folder .* has 4 images; holding out 0.9 of them leaves no "
                       "training images"):
        load_data(DataSource(str(tmp_path / "bad"), test_fraction=0.9))


def test_the_digits_export_script_writes_the_real_digits(tmp_path):
    from sklearn.datasets import load_digits
    out = tmp_path / "digits"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_digits.py"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = load_data(DataSource(str(out), test_fraction=0.1))
    assert data.image_shape == (8, 8, 1) and len(data.train) + len(data.test) == 1797
    assert data.class_names == tuple("0123456789")
    digits = load_digits()
    first = np.asarray(Image.open(out / str(digits.target[0]) / "0000.png"))
    np.testing.assert_array_equal(first, np.round(digits.images[0] * 255 / 16))
    again = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_digits.py"), str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists; remove it or choose another folder" in again.stderr


def test_the_digits_export_script_writes_an_npz_the_trainer_splits(tmp_path):
    from sklearn.datasets import load_digits
    out = tmp_path / "digits.npz"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_digits.py"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    digits = load_digits()
    with np.load(out) as saved:
        np.testing.assert_array_equal(saved["x"], np.round(digits.images * 255 / 16).astype(np.uint8))
        np.testing.assert_array_equal(saved["y"], digits.target)
    data = load_data(str(out))  # one `x`: split 90/10
    assert data.image_shape == (8, 8, 1) and (len(data.train), len(data.test)) == (1617, 180)
    again = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_digits.py"), str(out)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists; remove it or choose another file" in again.stderr


# ------------------------------------------------------------------------- issue 25: what users would see, exactly
def test_class_subfolders_under_train_and_test_keep_their_labels(tmp_path):
    rng = np.random.default_rng(5)
    for split, n in (("train", 4), ("test", 2)):
        for name in ("cat", "dog"):
            for i in range(n):
                _save(str(tmp_path / "d" / split / name / f"{i}.png"), _grey(rng, 8, 8))
    data = load_data(str(tmp_path / "d"))
    assert data.has_labels and data.class_names == ("cat", "dog")
    for split in (data.train, data.test):
        assert split.y.tolist() == [0 if os.sep + "cat" + os.sep in f else 1 for f in split.files]
        assert sorted(split.y.tolist()) == [0] * (len(split.files) // 2) + [1] * (len(split.files) // 2)


def test_in_memory_rgb_to_grey_uses_the_luma_weights_in_rgb_order(tmp_path):
    """Pure red, green and blue pixels: 0.2989, 0.587 and 0.114 of 255, rounded (ITU-R 601, written out here)."""
    x = np.zeros((4, 1, 3, 3), np.uint8)
    x[:, 0, 0, 0], x[:, 0, 1, 1], x[:, 0, 2, 2] = 255, 255, 255
    path = str(tmp_path / "rgb.npz")
    np.savez(path, x_train=x, x_test=x)
    grey = load_data(DataSource(path, channels=1))
    assert grey.image_shape == (1, 3, 1)
    assert grey.test_images()[0, 0, :, 0].tolist() == [round(0.2989 * 255), round(0.587 * 255), round(0.114 * 255)]


def test_the_training_set_is_reshuffled_every_epoch(tmp_path):
    """All images each epoch, in an order that is neither the stored one nor the previous epoch's (for 40 images the
    chance that a real shuffle repeats an order is 1 / 40!)."""
    x = np.arange(40, dtype=np.uint8).repeat(4).reshape(40, 2, 2)
    path = str(tmp_path / "n.npz")
    np.savez(path, x_train=x, x_test=x[:5])
    train, _ = datasets(load_data(path), 40)
    orders = [next(iter(train))["x"].numpy()[:, 0, 0, 0].tolist() for _ in range(2)]
    assert all(sorted(order) == list(range(40)) for order in orders)
    assert orders[0] != list(range(40)) and orders[1] != orders[0]
