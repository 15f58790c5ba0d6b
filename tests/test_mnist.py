"""The MNIST importer on IDX files the tests write themselves."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from data_tools.errors import InputError
from data_tools.mnist import download_mnist, find_idx_files, import_mnist, read_idx_images, read_idx_labels, resize_images
from data_tools.store import read_store
from helpers import assert_mentions, idx_images_bytes, idx_labels_bytes, random_digits, write_idx_dir


@pytest.mark.parametrize("gz", [False, True])
def test_parse_back_equal(tmp_path, gz):
    images, labels = random_digits(13)
    images_path, labels_path = write_idx_dir(tmp_path, "train", images, labels, gz=gz)
    parsed = read_idx_images(images_path)
    assert parsed.dtype == np.uint8 and parsed.shape == (13, 28, 28)
    np.testing.assert_array_equal(parsed, images)
    np.testing.assert_array_equal(read_idx_labels(labels_path), labels)


def test_gzip_detected_by_content_not_name(tmp_path):
    images, _ = random_digits(3)
    disguised = tmp_path / "images.bin"
    disguised.write_bytes(gzip.compress(idx_images_bytes(images)))
    plain_named_gz = tmp_path / "images.gz"
    plain_named_gz.write_bytes(idx_images_bytes(images))
    np.testing.assert_array_equal(read_idx_images(disguised), images)
    np.testing.assert_array_equal(read_idx_images(plain_named_gz), images)


def test_truncated_images(tmp_path):
    images, _ = random_digits(4)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_images_bytes(images)[:-5])
    with pytest.raises(InputError) as refused:
        read_idx_images(path)
    assert_mentions(str(refused.value), "t10k-images-idx3-ubyte: ", "truncated", "3131 data bytes", "3136")


def test_trailing_garbage(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_labels_bytes(np.array([1, 2, 3])) + b"xx")
    with pytest.raises(InputError, match="2 unexpected bytes"):
        read_idx_labels(path)


def test_bad_magic(tmp_path):
    _, labels = random_digits(20)  # long enough for an images header
    path = tmp_path / "swapped"
    path.write_bytes(idx_labels_bytes(labels))
    with pytest.raises(InputError) as refused:
        read_idx_images(path)
    assert_mentions(str(refused.value), "swapped: ", "not an IDX images file", "magic 0x00000801", "0x00000803")


def test_corrupt_gzip(tmp_path):
    images, _ = random_digits(4)
    data = bytearray(gzip.compress(idx_images_bytes(images)))
    data[20:40] = bytes(20)
    path = tmp_path / "broken.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="broken.gz: corrupt gzip data"):
        read_idx_images(path)


def test_label_not_a_digit(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_labels_bytes(np.array([1, 12, 3])))
    with pytest.raises(InputError, match="label 12 at sample 1 is not a digit"):
        read_idx_labels(path)


def test_count_mismatch(tmp_path):
    images, labels = random_digits(10)
    write_idx_dir(tmp_path, "test", images, labels[:9])
    with pytest.raises(InputError, match="holds 10 images but .* holds 9 labels"):
        import_mnist(tmp_path, "test", 28, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_find_idx_files_variants(tmp_path):
    (tmp_path / "train-images.idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    images_path, labels_path = find_idx_files(tmp_path, "train")
    assert images_path.name == "train-images.idx3-ubyte.gz"
    assert labels_path.name == "train-labels-idx1-ubyte"
    with pytest.raises(InputError, match="no MNIST test file t10k-images-idx3-ubyte"):
        find_idx_files(tmp_path, "test")
    with pytest.raises(InputError, match="no such folder"):
        find_idx_files(tmp_path / "absent", "train")


def test_resize_equals_torchvision(tmp_path):
    from torchvision import transforms

    # smooth blobs rather than noise, so interpolation differences would show
    images, _ = random_digits(5)
    images[:, 10:18, 6:22] = 255
    resize = transforms.Resize(32)
    expected = np.stack([np.asarray(resize(Image.fromarray(image))) for image in images])
    resized = resize_images(images, 32)
    assert resized.shape == (5, 32, 32) and resized.dtype == np.uint8
    np.testing.assert_array_equal(resized, expected)
    assert resize_images(images, 28) is images


@pytest.mark.parametrize(("size", "gz"), [(28, False), (32, True)])
def test_import_end_to_end(tmp_path, size, gz):
    images, labels = random_digits(23, seed=5)
    write_idx_dir(tmp_path / "idx", "test", images, labels, gz=gz)
    out = tmp_path / "mnist.h5"
    count = import_mnist(tmp_path / "idx", "test", size, out, compression="gzip", provenance_extra={"by": "test"})
    assert count == 23
    glyphs = read_store(out)
    np.testing.assert_array_equal(glyphs.images, resize_images(images, size))
    np.testing.assert_array_equal(glyphs.labels, labels)
    assert glyphs.classes.text == [str(d) for d in range(10)]
    assert glyphs.classes.codepoint == list(range(48, 58))
    assert glyphs.sources == ["MNIST test"]
    assert set(glyphs.source_ids.tolist()) == {0}
    assert glyphs.provenance["split"] == "test" and glyphs.provenance["size"] == size
    assert glyphs.provenance["by"] == "test"
    assert sorted(glyphs.provenance["source_files"]) == sorted(str(p) for p in find_idx_files(tmp_path / "idx", "test"))


def test_download_failure_is_one_line_input_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirrors")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(InputError, match="could not download MNIST: .*; pass --idx-dir") as caught:
        download_mnist(tmp_path, "train")
    assert "\n" not in str(caught.value)
