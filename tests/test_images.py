"""Decoding real photos and digits: formats, colour modes, orientation, fits, bad files."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kagglekit import images
from kagglekit.errors import ImageError
from kagglekit.images import load_image, scan_images


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo (scikit-image's coffee), 150x200 RGB."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.coffee()[100:400:2, 100:500:2])


@pytest.fixture(params=["simplejpeg", "pillow", "pillow-only"])
def decoder(request, monkeypatch):
    """Run a test with each decoder: simplejpeg (+OpenCV resize), Pillow (+OpenCV), Pillow alone."""
    if request.param == "simplejpeg" and images._simplejpeg is None:
        pytest.skip("simplejpeg is not installed, so only the Pillow decoder exists")
    if request.param != "simplejpeg":
        monkeypatch.setattr(images, "_simplejpeg", None)
    if request.param == "pillow-only":
        monkeypatch.setattr(images, "_cv2", None)
    return request.param


def _save(im: Image.Image, path: Path, fmt: str, **kw) -> Path:
    im.save(path, fmt, **kw)
    return path


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_formats_decode_to_rgb_uint8(tmp_path, photo):
    im = Image.fromarray(photo)
    for fmt, suffix in [("JPEG", ".jpg"), ("PNG", ".png"), ("GIF", ".gif"), ("BMP", ".bmp"), ("WEBP", ".webp")]:
        path = _save(im, tmp_path / f"x{suffix}", fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
        got = load_image(path)
        assert got.dtype == np.uint8 and got.shape == photo.shape, fmt
        assert _mad(got, photo) < (12 if fmt == "GIF" else 4), fmt


def test_colour_modes_come_out_rgb(tmp_path, photo, decoder):
    im = Image.fromarray(photo)
    gray = np.asarray(im.convert("L"))
    # CMYK JPEG: colours survive the round trip
    got = load_image(_save(im.convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG", quality=95))
    assert got.shape == photo.shape and _mad(got, photo) < 6
    # grayscale JPEG and PNG: three equal channels
    for fmt, name in [("JPEG", "g.jpg"), ("PNG", "g.png")]:
        got = load_image(_save(im.convert("L"), tmp_path / name, fmt, **({"quality": 95} if fmt == "JPEG" else {})))
        assert got.shape == photo.shape
        assert np.array_equal(got[..., 0], got[..., 2]) and _mad(got[..., 0], gray) < 3
    # 16-bit grayscale PNG: scaled to 8 bits, not clipped
    deep = Image.fromarray(gray.astype(np.uint16) * 257)
    path = _save(deep, tmp_path / "deep.png", "PNG")
    assert Image.open(path).mode.startswith("I")
    got = load_image(path)
    assert got.dtype == np.uint8 and np.abs(got[..., 1].astype(int) - gray).max() <= 1
    # palette PNG
    pal = im.convert("P", palette=Image.ADAPTIVE, colors=64)
    got = load_image(_save(pal, tmp_path / "pal.png", "PNG"))
    assert np.array_equal(got, np.asarray(pal.convert("RGB")))
    # RGBA: transparent pixels composited on white, opaque ones kept
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:20, :, 3] = 0
    got = load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png", "PNG"))
    assert (got[:20] == 255).all() and np.array_equal(got[20:], photo[20:])


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, photo, decoder, orientation):
    # A camera stores the sensor's pixels plus a tag saying how to turn them upright.
    undo = {3: Image.ROTATE_180, 6: Image.ROTATE_90, 8: Image.ROTATE_270}[orientation]
    stored = Image.fromarray(photo).transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(stored, tmp_path / f"o{orientation}.jpg", "JPEG", quality=95, exif=exif.tobytes())
    got = load_image(path)
    assert got.shape == photo.shape
    assert _mad(got, photo) < 4
    small = load_image(path, size=(30, 40))  # height, width of the upright picture
    assert small.shape == (30, 40, 3)
    ref = np.asarray(Image.fromarray(photo).resize((40, 30), Image.BILINEAR))
    assert _mad(small, ref) < 6


def test_reduce_on_decode_matches_full_decode(tmp_path, photo, decoder):
    big = Image.fromarray(photo).resize((600, 450), Image.BICUBIC)
    path = _save(big, tmp_path / "big.jpg", "JPEG", quality=90)
    full = np.asarray(Image.open(path).convert("RGB"))
    for size in (64, (100, 120), 200):
        for resize in ("squash", "crop", "pad"):
            fast = load_image(path, size, resize)
            slow = images._resize_pil(Image.fromarray(full), images.as_size(size), resize)
            assert fast.shape == np.asarray(slow).shape
            # JPEG's own DCT downscaling is a slightly different low-pass filter than
            # Pillow's antialiased resize: a few levels out of 255 on average
            assert _mad(fast, np.asarray(slow)) < 5.0, (size, resize)


def test_resize_modes_keep_or_ignore_the_aspect_ratio(tmp_path):
    # a 2:1 picture: left half black, right half white
    a = np.zeros((50, 100, 3), np.uint8)
    a[:, 50:] = 255
    path = _save(Image.fromarray(a), tmp_path / "wide.png", "PNG")
    squash = load_image(path, 40, "squash")
    assert squash.shape == (40, 40, 3) and squash[:, :15].max() == 0 and squash[:, 25:].min() == 255
    pad = load_image(path, 40, "pad")  # fits inside: black bands above and below
    assert pad.shape == (40, 40, 3) and pad[:8].max() == 0 and pad[-8:].max() == 0 and pad[15:25, 25:].min() == 255
    crop = load_image(path, 40, "crop")  # fills: the centre 50x50 of the picture
    assert crop.shape == (40, 40, 3) and crop[:, :15].max() == 0 and crop[:, 25:].min() == 255
    with pytest.raises(Exception, match="resize='stretch'"):
        load_image(path, 40, "stretch")


def _bad_folder(root: Path, photo: np.ndarray) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    good = _save(Image.fromarray(photo), root / "good.jpg", "JPEG", quality=90)
    data = good.read_bytes()
    files = {
        "good": good,
        "empty": root / "empty.jpg",
        "truncated": root / "truncated.jpg",
        "text": root / "notes.jpg",
        "png_named_jpg": _save(Image.fromarray(photo), root / "really_png.jpg", "PNG"),
        "truncated_png": root / "cut.png",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("id,label\n1,cat\n")
    png = files["png_named_jpg"].read_bytes()
    files["truncated_png"].write_bytes(png[: len(png) * 2 // 3])
    return files


def test_bad_files_are_found_and_skipped_with_a_report(tmp_path, photo, capsys):
    files = _bad_folder(tmp_path / "imgs", photo)
    report = tmp_path / "bad.csv"
    scan = scan_images(files.values(), report=report)
    bad = {Path(p).name for p in scan.bad}
    assert bad == {"empty.jpg", "truncated.jpg", "notes.jpg", "cut.png"}
    assert scan.ok.sum() == 2
    assert "4" in capsys.readouterr().err  # a count on screen
    with open(report, newline="") as fh:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    assert rows["empty.jpg"]["problem"].startswith("empty") and rows["empty.jpg"]["action"] == "skipped"
    assert "truncated" in rows["truncated.jpg"]["problem"]
    assert "not an image" in rows["notes.jpg"]["problem"]
    assert rows["really_png.jpg"]["action"] == "kept" and "PNG" in rows["really_png.jpg"]["problem"]
    # the PNG named .jpg decodes fine, by content
    assert np.array_equal(load_image(files["png_named_jpg"]), photo)
    # every bad file raises ImageError naming it, never another exception
    for key in ("empty", "truncated", "text", "truncated_png"):
        with pytest.raises(ImageError, match=files[key].name):
            load_image(files[key], 32)


def test_strict_scan_lists_the_offenders(tmp_path, photo):
    files = _bad_folder(tmp_path / "imgs", photo)
    with pytest.raises(ImageError) as err:
        scan_images(files.values(), strict=True)
    msg = str(err.value)
    assert "4 image files" in msg and "empty.jpg" in msg and "notes.jpg" in msg and "strict=False" in msg


def test_full_scan_finds_corruption_the_quick_check_cannot(tmp_path, photo):
    path = _save(Image.fromarray(photo), tmp_path / "x.jpg", "JPEG", quality=90)
    data = bytearray(path.read_bytes())
    cut = bytes(data[: len(data) // 2]) + b"\xff\xd9"  # truncated but with an end marker
    path.write_bytes(cut)
    assert scan_images([path], full=True, verbose=False).bad == [str(path)]
