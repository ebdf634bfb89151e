"""Behaviour of vision_rnn.stimuli: decoding of every image mode, folder scanning,
errors, metadata, HDF5, prepare() and the built-in Fashion-MNIST stimuli."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageOps

from hypothesis import given
from hypothesis import strategies as st

from vision_rnn.errors import StimuliError, VRNNWarning
from vision_rnn.stimuli import Stimuli, decode_image, from_arrays, load_stimuli, prepare, to_rgb

W, H = 40, 30          # not square: prepare() must resize the shorter side and crop
SIZE = 32
MEAN = (0.1, 0.5, 0.3)  # distinct per channel, so a channel mix-up shows
STD = (0.2, 0.4, 0.3)
FASHION_CLASSES = ["tshirt_top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def make_rgb(w=W, h=H) -> Image.Image:
    """A smooth gradient (different in each channel) plus two shapes."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), 255 - (x + y) * 255 // (w + h - 2)], axis=2)
    im = Image.fromarray(a.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse([w // 4, h // 4, w // 2, 3 * h // 4], fill=(250, 20, 30))
    d.rectangle([w - 12, 3, w - 4, 9], fill=(10, 200, 60))
    return im


def grey3(im: Image.Image) -> np.ndarray:
    g = np.asarray(im.convert("L"))
    return np.repeat(g[:, :, None], 3, axis=2)


def prep(a: np.ndarray) -> torch.Tensor:
    return prepare([a], SIZE, MEAN, STD)


# -- image modes ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """name -> (path, reference (H, W, 3) uint8, max allowed pixel difference)."""
    d = tmp_path_factory.mktemp("modes")
    rgb = make_rgb()
    ref = np.asarray(rgb)
    out = {}

    rgb.save(d / "rgb.png")
    out["png_rgb"] = (d / "rgb.png", ref, 0)

    grey = rgb.convert("L")
    grey.save(d / "grey.png")
    out["png_grey_L"] = (d / "grey.png", grey3(rgb), 0)

    pal = rgb.quantize(colors=24)
    assert pal.mode == "P"
    pal.save(d / "palette.png")
    out["png_palette_P"] = (d / "palette.png", np.asarray(pal.convert("RGB")), 0)

    rgba = rgb.copy()
    rgba.putalpha(255)
    rgba.save(d / "rgba_opaque.png")
    out["png_rgba_opaque"] = (d / "rgba_opaque.png", ref, 0)

    la = grey.copy()
    la.putalpha(255)
    la.save(d / "la_opaque.png")
    out["png_la_opaque"] = (d / "la_opaque.png", grey3(rgb), 0)

    g16 = np.asarray(grey).astype(np.uint16) * 257          # full 16-bit range
    im16 = Image.fromarray(g16)
    assert im16.mode.startswith("I;16")
    im16.save(d / "grey16.png")
    out["png_grey16"] = (d / "grey16.png", grey3(rgb), 0)
    im16.save(d / "grey16.tif")
    out["tiff_grey16"] = (d / "grey16.tif", grey3(rgb), 0)

    rgb.save(d / "rgb.bmp")
    out["bmp"] = (d / "rgb.bmp", ref, 0)

    rgb.save(d / "rgb_lossless.webp", lossless=True)
    out["webp_lossless"] = (d / "rgb_lossless.webp", ref, 0)

    rgb.save(d / "rgb.tif")
    out["tiff_rgb"] = (d / "rgb.tif", ref, 0)

    frame0 = rgb.quantize(colors=32)
    frame1 = ImageOps.invert(rgb).quantize(colors=32)
    frame0.save(d / "anim.gif", save_all=True, append_images=[frame1], duration=100, loop=0)
    out["gif_first_frame"] = (d / "anim.gif", np.asarray(frame0.convert("RGB")), 0)

    rgb.save(d / "rgb.jpg", quality=95, subsampling=0)
    out["jpeg_rgb"] = (d / "rgb.jpg", ref, 24)

    rgb.convert("CMYK").save(d / "cmyk.jpg", quality=95, subsampling=0)
    out["jpeg_cmyk"] = (d / "cmyk.jpg", ref, 24)

    # EXIF orientation: pixels stored rotated, the tag says how to turn them upright.
    # 6 = "rotate 90 deg clockwise to display", 8 = "rotate 90 deg counter-clockwise".
    for tag, stored in ((6, rgb.transpose(Image.Transpose.ROTATE_90)),
                        (8, rgb.transpose(Image.Transpose.ROTATE_270))):
        exif = Image.Exif()
        exif[0x0112] = tag
        stored.save(d / f"exif{tag}.jpg", quality=95, subsampling=0, exif=exif.tobytes())
        out[f"jpeg_exif_orientation_{tag}"] = (d / f"exif{tag}.jpg", ref, 24)
    return out


VARIANT_NAMES = ["png_rgb", "png_grey_L", "png_palette_P", "png_rgba_opaque", "png_la_opaque",
                 "png_grey16", "tiff_grey16", "bmp", "webp_lossless", "tiff_rgb", "gif_first_frame",
                 "jpeg_rgb", "jpeg_cmyk", "jpeg_exif_orientation_6", "jpeg_exif_orientation_8"]


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_decode_matches_8bit_rgb_reference(variants, name):
    path, ref, tol = variants[name]
    a = decode_image(path)
    assert a.dtype == np.uint8 and a.shape == (H, W, 3), (a.dtype, a.shape)
    diff = np.abs(a.astype(int) - ref.astype(int))
    if tol == 0:
        np.testing.assert_array_equal(a, ref)
    else:  # JPEG: small loss everywhere, never a wrong colour or orientation
        assert diff.max() <= tol and diff.mean() < 2.0, (diff.max(), diff.mean())


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_prepare_of_each_mode_matches_prepare_of_reference(variants, name):
    path, ref, tol = variants[name]
    x, r = prep(decode_image(path)), prep(ref)
    assert x.shape == r.shape == (1, 3, SIZE, SIZE) and x.dtype == torch.float32
    # resize weights are >= 0 and sum to 1, so a pixel error e gives at most e/255/std
    bound = tol / 255 / min(STD) + 1e-5
    assert (x - r).abs().max().item() <= bound


def test_mode_test_files_really_are_those_modes(variants):
    """The fixtures exercise what they claim (else the tests above prove nothing)."""
    modes = {}
    for name in VARIANT_NAMES:
        with Image.open(variants[name][0]) as im:
            modes[name] = (im.mode, im.size, getattr(im, "n_frames", 1))
    assert modes["png_grey_L"][0] == "L"
    assert modes["png_palette_P"][0] == "P"
    assert modes["png_rgba_opaque"][0] == "RGBA"
    assert modes["png_la_opaque"][0] == "LA"
    assert modes["png_grey16"][0].startswith("I")
    assert modes["tiff_grey16"][0].startswith("I")
    assert modes["jpeg_cmyk"][0] == "CMYK"
    assert modes["gif_first_frame"][2] == 2
    assert modes["jpeg_exif_orientation_6"][1] == (H, W)  # stored sideways
    assert modes["jpeg_exif_orientation_8"][1] == (H, W)


def test_16bit_naive_conversion_would_be_wrong(variants):
    """PIL's own convert('RGB') clips 16-bit values: almost white. decode_image scales."""
    path, ref, _ = variants["png_grey16"]
    with Image.open(path) as im:
        naive = np.asarray(im.convert("RGB"))
    assert naive.mean() > 240 > ref.mean()
    np.testing.assert_array_equal(decode_image(path), ref)


def test_16bit_values_are_scaled_by_257_and_rounded():
    a = np.array([[0, 128, 129, 257, 385, 386, 65406, 65407, 65535]], dtype=np.uint16)
    out = to_rgb(Image.fromarray(a))
    expect = np.array([0, 0, 1, 1, 1, 2, 254, 255, 255], dtype=np.uint8)  # round(v / 257)
    np.testing.assert_array_equal(out[0, :, 0], expect)
    assert (out == out[:, :, :1]).all()


def test_gif_first_frame_not_second(variants):
    path, ref, _ = variants["gif_first_frame"]
    with Image.open(path) as im:
        im.seek(1)
        second = np.asarray(im.convert("RGB"))
    assert np.abs(second.astype(int) - ref.astype(int)).mean() > 50
    np.testing.assert_array_equal(decode_image(path), ref)


def test_rgba_partial_alpha_composited_on_white(tmp_path):
    rgb = np.asarray(make_rgb())
    alpha = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "a.png")
    out = decode_image(tmp_path / "a.png")
    assert (out[:, 0] == 255).all()                      # alpha 0 -> white
    np.testing.assert_array_equal(out[:, -1], rgb[:, -1])  # alpha 255 -> the colour
    y, x = 15, 20
    a = alpha[y, x] / 255
    for c in range(3):
        assert out[y, x, c] == round(rgb[y, x, c] * a + 255 * (1 - a))
    # the composite of a half-transparent black pixel is mid grey, not black
    Image.new("RGBA", (3, 2), (0, 0, 0, 128)).save(tmp_path / "b.png")
    assert (decode_image(tmp_path / "b.png") == 127).all()


def test_palette_transparency_composited_on_white(tmp_path):
    p = make_rgb().quantize(colors=16)
    idx = np.asarray(p)
    t = int(idx[0, 0])
    p.info["transparency"] = t
    p.save(tmp_path / "pt.png", transparency=t)
    out = decode_image(tmp_path / "pt.png")
    solid = np.asarray(p.convert("RGB"))
    assert (out[idx == t] == 255).all()
    np.testing.assert_array_equal(out[idx != t], solid[idx != t])


# -- folders --------------------------------------------------------------------------------
def _png(path: Path, colour=(10, 20, 30), size=(6, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "stim"
    _png(root / "root_b.png", (1, 1, 1))
    _png(root / "cat" / "z.png", (2, 2, 2))
    _png(root / "cat" / "a.png", (3, 3, 3))
    Image.new("RGB", (6, 4), (4, 4, 4)).save(root / "cat" / "m.jpg")
    _png(root / "dog" / "sub" / "x.png", (5, 5, 5))
    _png(root / "dog" / "UPPER.PNG", (6, 6, 6))
    _png(root / "a_root.png", (7, 7, 7))
    # ignored: hidden files and folders, non-image files
    (root / "._x.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "cat" / "._a.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    _png(root / ".thumbs" / "t.png")
    _png(root / "dog" / ".hidden" / "h.png")
    (root / "notes.txt").write_text("hello")
    (root / "cat" / "README.md").write_text("cats")
    (root / "dog" / "Thumbs.db").write_bytes(b"\x00" * 10)
    return root


def test_folder_scan(tree):
    s = load_stimuli(tree)
    assert s.ids == ["a_root.png", "cat/a.png", "cat/m.jpg", "cat/z.png", "dog/UPPER.PNG",
                     "dog/sub/x.png", "root_b.png"]
    assert s.label_names == ["", "cat", "cat", "cat", "dog", "dog", ""]
    assert [Path(f).relative_to(tree).as_posix() for f in s.files] == s.ids
    assert s.load([6])[0][0, 0].tolist() == [1, 1, 1]     # images follow their ids
    assert s.load([1, 0])[1][0, 0].tolist() == [7, 7, 7]
    assert s.load([5])[0][0, 0].tolist() == [5, 5, 5]
    assert s.source == str(tree) and s.name == "stim"
    assert s.labels_for(["dog", "bird", "cat"]).tolist() == [-1, 2, 2, 2, 0, 0, -1]
    assert s.labels_for([]).tolist() == [-1] * 7
    assert s.labels_for(["dog", "cat"]).dtype == np.int64


def test_folder_sorted_by_relative_path_not_by_walk_order(tmp_path):
    root = tmp_path / "s"
    for rel in ["b/1.png", "a.png", "a/2.png", "a-b.png", "B/0.png", "a/b/0.png"]:
        _png(root / rel)
    s = load_stimuli(str(root))
    assert s.ids == sorted(["b/1.png", "a.png", "a/2.png", "a-b.png", "B/0.png", "a/b/0.png"])
    assert all("\\" not in i for i in s.ids)
    assert s.label_names == [i.split("/")[0] if "/" in i else "" for i in s.ids]


def test_batches_and_fingerprint(tree):
    s = load_stimuli(tree)
    got = list(s.batches(3, 8, (0, 0, 0), (1, 1, 1)))
    assert [i for i, _ in got] == [0, 3, 6]
    assert [b.shape[0] for _, b in got] == [3, 3, 1]
    assert got[0][1].shape == (3, 3, 8, 8)
    assert torch.allclose(got[2][1], torch.full((1, 3, 8, 8), 1 / 255))
    assert list(s.batches(3, 8, (0,) * 3, (1,) * 3, start=6))[0][0] == 6
    fp = s.fingerprint()
    assert fp == load_stimuli(tree).fingerprint()
    _png(tree / "cat" / "new.png")
    assert load_stimuli(tree).fingerprint() != fp


# -- errors ---------------------------------------------------------------------------------
def test_missing_folder(tmp_path):
    p = tmp_path / "nope"
    with pytest.raises(StimuliError, match="does not exist") as e:
        load_stimuli(p)
    assert str(p) in str(e.value)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StimuliError) as e:
        load_stimuli(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value) and "nothing" in str(e.value)


def test_folder_with_only_text(tmp_path):
    d = tmp_path / "txt"
    d.mkdir()
    (d / "readme.txt").write_text("x")
    _png(d / ".hidden.png")
    with pytest.raises(StimuliError) as e:
        load_stimuli(d)
    assert str(d) in str(e.value) and "1 file(s) but none with an image extension" in str(e.value)


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "one.png"
    _png(f)
    with pytest.raises(StimuliError, match="not a folder") as e:
        load_stimuli(f)
    assert str(f) in str(e.value)


def test_unknown_builtin():
    with pytest.raises(StimuliError, match="builtin:fashion-mnist"):
        load_stimuli("builtin:cifar")


@pytest.fixture
def bad_folder(tmp_path):
    d = tmp_path / "bad"
    _png(d / "good.png")
    _png(d / "sub" / "good2.png")
    (d / "empty.png").write_bytes(b"")
    big = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(big).save(d / "full.png")
    data = (d / "full.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    (d / "full.png").unlink()
    (d / "text.jpg").write_text("this is not a JPEG\n")
    return d


def test_check_lists_every_bad_file(bad_folder):
    s = load_stimuli(bad_folder)
    assert len(s) == 5
    with pytest.raises(StimuliError) as e:
        s.check()
    msg = str(e.value)
    assert "3 unreadable" in msg and str(bad_folder) in msg
    for name in ("empty.png", "truncated.png", "text.jpg"):
        assert name in msg
    assert "good.png" not in msg


def test_check_skip_bad_drops_and_records(bad_folder):
    s = load_stimuli(bad_folder).check(skip_bad=True)
    assert s.ids == ["good.png", "sub/good2.png"]
    assert s.label_names == ["", "sub"]
    assert sorted(s.skipped) == ["empty.png", "text.jpg", "truncated.png"]
    assert [a.shape for a in s.load([0, 1])] == [(4, 6, 3)] * 2
    assert [Path(f).name for f in s.files] == ["good.png", "good2.png"]


def test_check_passes_good_folder_unchanged(tree):
    s = load_stimuli(tree)
    assert s.check() is s
    assert s.check(skip_bad=True) is s


def test_check_all_bad(tmp_path):
    d = tmp_path / "allbad"
    d.mkdir()
    (d / "a.png").write_bytes(b"")
    with pytest.raises(StimuliError, match="every image is unreadable"):
        load_stimuli(d).check(skip_bad=True)


def test_loading_bad_file_names_it(bad_folder):
    s = load_stimuli(bad_folder)
    i = s.ids.index("truncated.png")
    with pytest.raises(StimuliError) as e:
        s.load([i])
    assert str(bad_folder / "truncated.png") in str(e.value)


# -- metadata -------------------------------------------------------------------------------
def test_metadata_exact_ids(tree, tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text("stimulus,animacy,size\n"
                   "cat/z.png,animate,3\n"
                   "dog/sub/x.png,animate,5.5\n"
                   "root_b.png,inanimate,1\n"
                   "not/there.png,inanimate,9\n")
    with pytest.warns(VRNNWarning, match=r"1 row\(s\) match no stimulus and are left out \('not/there.png'\)"):
        s = load_stimuli(tree, metadata=csv)
    m = s.metadata
    assert s.metadata_unmatched == ["not/there.png"]
    assert list(m.index) == s.ids
    assert list(m.columns) == ["animacy", "size"]
    row = dict(zip(s.ids, m["animacy"]))
    assert row["cat/z.png"] == "animate" and row["root_b.png"] == "inanimate"
    assert row["cat/a.png"] == ""  # no row: empty string, not NaN
    sizes = dict(zip(s.ids, m["size"]))
    assert sizes["dog/sub/x.png"] == 5.5 and sizes["cat/z.png"] == 3
    assert np.isnan(sizes["cat/a.png"])
    assert s.ids == load_stimuli(tree).ids  # metadata does not reorder or drop
    # metadata follows the stimuli through subset() and check(skip_bad=...)
    sub = s.subset([3, 6])
    assert list(sub.metadata.index) == ["cat/z.png", "root_b.png"]
    assert list(sub.metadata["animacy"]) == ["animate", "inanimate"]


def test_metadata_by_stem(tree, tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text("stimulus,rating\nz,0.25\nx,0.75\nroot_b,1.0\n")
    with pytest.warns(VRNNWarning, match="4 of 7 stimuli have no row"):
        s = load_stimuli(tree).with_metadata(csv)
    r = dict(zip(s.ids, s.metadata["rating"]))
    assert r["cat/z.png"] == 0.25 and r["dog/sub/x.png"] == 0.75 and r["root_b.png"] == 1.0
    assert np.isnan(r["cat/a.png"])


def test_metadata_numeric_looking_ids_stay_strings(tmp_path):
    s = from_arrays(np.zeros((3, 4, 4, 3), np.uint8))
    assert s.ids == ["00000", "00001", "00002"]
    csv = tmp_path / "m.csv"
    csv.write_text("stimulus,v\n00001,7\n00002,8\n")
    with pytest.warns(VRNNWarning, match="1 of 3 stimuli have no row"):
        s = s.with_metadata(csv)
    assert np.isnan(s.metadata["v"].iloc[0]) and list(s.metadata["v"].iloc[1:]) == [7, 8]


def test_metadata_errors(tree, tmp_path):
    s = load_stimuli(tree)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("image,x\ncat/z.png,1\n")
    with pytest.raises(StimuliError, match="stimulus") as e:
        s.with_metadata(nocol)
    assert str(nocol) in str(e.value) and "image" in str(e.value)

    dup = tmp_path / "dup.csv"
    dup.write_text("stimulus,x\ncat/z.png,1\ncat/a.png,2\ncat/z.png,3\n")
    with pytest.raises(StimuliError, match="appears twice") as e:
        s.with_metadata(dup)
    assert str(dup) in str(e.value) and "cat/z.png" in str(e.value)

    nomatch = tmp_path / "nomatch.csv"
    nomatch.write_text("stimulus,x\nfoo,1\n")
    with pytest.raises(StimuliError, match="no 'stimulus' value matches"):
        s.with_metadata(nomatch)

    clash = tmp_path / "clash.csv"
    clash.write_text("stimulus,label\ncat/z.png,1\n")
    with pytest.raises(StimuliError, match="'label' is a name of the file's layout"):
        s.with_metadata(clash)

    with pytest.raises(StimuliError, match="does not exist"):
        s.with_metadata(tmp_path / "missing.csv")


@pytest.fixture
def same_stems(tmp_path):
    root = tmp_path / "stems"
    _png(root / "cat" / "img0.png", (1, 1, 1))
    _png(root / "dog" / "img1.png", (3, 3, 3))
    Image.new("RGB", (4, 4), (2, 2, 2)).save(root / "dog" / "img0.jpg")
    return load_stimuli(root)


def test_metadata_stem_shared_by_two_stimuli_is_ambiguous(same_stems, tmp_path):
    assert same_stems.ids == ["cat/img0.png", "dog/img0.jpg", "dog/img1.png"]
    csv = tmp_path / "m.csv"
    csv.write_text("stimulus,rating\nimg0,1\nimg1,2\n")
    with pytest.raises(StimuliError) as e:
        same_stems.with_metadata(csv)
    msg = str(e.value)
    assert "\n" not in msg and "m.csv" in msg and "'img0'" in msg and "cat/img0.png" in msg and "dog/img0.jpg" in msg
    # full ids resolve it; a unique stem still matches
    csv.write_text("stimulus,rating\ncat/img0.png,1\ndog/img0.jpg,2\nimg1,3\n")
    m = same_stems.with_metadata(csv).metadata
    assert list(m["rating"]) == [1, 2, 3]


def test_metadata_two_rows_for_one_stimulus_are_ambiguous(same_stems, tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("stimulus,rating\ndog/img1.png,1\nimg1,2\n")
    with pytest.raises(StimuliError, match="'dog/img1.png' and 'img1' both name stimulus 'dog/img1.png'"):
        same_stems.with_metadata(csv)


def test_metadata_rows_that_match_nothing_are_reported(same_stems, tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("stimulus,rating\ndog/img1.png,1\nzebra,2\nimg9,3\n")
    with pytest.warns(VRNNWarning) as w:
        s = same_stems.with_metadata(csv)
    assert len(w) == 1
    msg = str(w[0].message)
    assert "m.csv" in msg and "2 row(s) match no stimulus" in msg and "'zebra'" in msg and "'img9'" in msg
    assert "2 of 3 stimuli have no row" in msg
    assert s.metadata_unmatched == ["zebra", "img9"] and list(s.metadata["rating"].isna()) == [True, True, False]


def test_metadata_warning_is_one_line_on_the_command_line(same_stems, tmp_path):
    from click.testing import CliRunner

    from vision_rnn.cli import main

    csv = tmp_path / "m.csv"
    csv.write_text("stimulus,rating\ndog/img1.png,1\nzebra,2\n")
    r = CliRunner().invoke(main, ["extract", "--model", "lateral", "--stimuli", same_stems.source,
                                  "--metadata", str(csv), "--layers", "gap", "-o", str(tmp_path / "o.nc")])
    assert r.exit_code == 0, r.output
    warn = [l for l in r.stderr.splitlines() if l.startswith("vrnn: warning:")]
    assert len(warn) == 1 and "'zebra'" in warn[0] and "m.csv" in warn[0]


_ids = st.lists(st.sampled_from(["a", "b", "c"]).flatmap(
    lambda stem_: st.tuples(st.sampled_from(["", "x/", "y/"]), st.just(stem_), st.sampled_from([".png", ".jpg"]))
).map(lambda t: "".join(t)), min_size=1, max_size=6, unique=True)


@given(ids=_ids, keys=st.lists(st.sampled_from(["a", "b", "c", "d", "x/a.png", "y/b.jpg", "a.png", "c.jpg"]),
                                max_size=6, unique=True))
def test_match_rows_never_guesses(ids, keys):
    """Property: every matched row names its stimulus exactly or by a stem no other stimulus has; every
    stimulus gets at most one row; a row is matched, reported unmatched, or the whole table is refused."""
    from vision_rnn.stimulus_ids import match_rows, stem

    try:
        rows, unmatched = match_rows(ids, keys, "t.csv")
    except StimuliError as e:
        assert "ambiguous" in str(e) and "\n" not in str(e)
        stems = [stem(i) for i in ids]
        ambiguous = [k for k in keys if k not in ids and stems.count(k) > 1]
        targets = [ids.index(k) if k in ids else (stems.index(k) if stems.count(k) == 1 else None) for k in keys]
        hit = [t for t in targets if t is not None]
        assert ambiguous or len(hit) != len(set(hit))
        return
    assert sorted(rows.values()) == sorted(set(rows.values()))
    for i, r in rows.items():
        key = keys[r]
        assert key == ids[i] or (key not in ids and [stem(x) for x in ids].count(key) == 1 and stem(ids[i]) == key)
    assert set(unmatched) | {keys[r] for r in rows.values()} == set(keys)
    assert not set(unmatched) & {keys[r] for r in rows.values()}


# -- HDF5 -----------------------------------------------------------------------------------
@pytest.fixture
def h5file(tmp_path):
    import h5py

    rng = np.random.default_rng(1)
    path = tmp_path / "mini.h5"
    data = rng.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("test/data", data=data)
        f.create_dataset("test/labels", data=np.array([2, 0, 1, 2, 0], dtype=np.int64))
        f.create_dataset("train/data", data=data[:2])
        f.create_dataset("train/labels", data=np.array([1, 1]))
        f.create_dataset("categories", data=np.array([b"apple", b"bear", b"car"]))
    return path, data


def test_hdf5_miniecoset_layout(h5file):
    path, data = h5file
    s = load_stimuli(f"{path}:test")
    assert s.ids == ["test/000000", "test/000001", "test/000002", "test/000003", "test/000004"]
    assert s.label_names == ["car", "apple", "bear", "car", "apple"]
    assert s.labels_for(["apple", "bear", "car"]).tolist() == [2, 0, 1, 2, 0]
    got = s.load([3, 1, 4])
    for g, i in zip(got, [3, 1, 4]):
        np.testing.assert_array_equal(g, data[i])
    assert s.source == f"{path}:test"
    assert load_stimuli(f"{path}:train").label_names == ["bear", "bear"]
    x = prepare(s.load(range(5)), 8, MEAN, STD)
    assert x.shape == (5, 3, 8, 8)


def test_hdf5_errors(h5file, tmp_path):
    path, _ = h5file
    with pytest.raises(StimuliError) as e:
        load_stimuli(f"{path}:val")
    msg = str(e.value)
    assert str(path) in msg and "'val'" in msg and "test" in msg and "train" in msg
    with pytest.raises(StimuliError, match="name the split"):
        load_stimuli(str(path))
    with pytest.raises(StimuliError, match="does not exist"):
        load_stimuli(f"{tmp_path / 'none.h5'}:test")
    noth5 = tmp_path / "x.h5"
    noth5.write_text("not hdf5")
    with pytest.raises(StimuliError, match="not a readable HDF5") as e:
        load_stimuli(f"{noth5}:test")
    assert str(noth5) in str(e.value)


# -- prepare --------------------------------------------------------------------------------
def _reference(a: np.ndarray, out_hw, crop_hw=None) -> torch.Tensor:
    """Independent reference: F.interpolate (bilinear, antialias), centre crop, normalise."""
    x = torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255
    if tuple(x.shape[-2:]) != tuple(out_hw):
        x = F.interpolate(x, size=out_hw, mode="bilinear", antialias=True, align_corners=False)
    if crop_hw is not None:
        h, w = x.shape[-2:]
        top, left = int(round((h - crop_hw[0]) / 2)), int(round((w - crop_hw[1]) / 2))
        x = x[..., top:top + crop_hw[0], left:left + crop_hw[1]]
    m = torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    return ((x - m) / s).float()


def test_prepare_upsamples_28_to_32():
    a = np.asarray(make_rgb(28, 28))
    x = prepare([a], 32, MEAN, STD)
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32
    torch.testing.assert_close(x, _reference(a, (32, 32)), atol=1e-5, rtol=0)
    # also against torchvision's own resize
    from torchvision.transforms.v2 import functional as TF

    t = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    t = TF.resize(t, [32, 32], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    t = (t - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(x[0], t, atol=1e-5, rtol=0)
    # grey stays grey; channel c uses mean[c], std[c]
    g = np.repeat(np.asarray(make_rgb(28, 28).convert("L"))[:, :, None], 3, axis=2)
    xg = prepare(g[None], 32, MEAN, STD)
    raw = xg * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(raw[:, 0], raw[:, 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(raw[:, 0], raw[:, 2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("hw, resized", [((48, 64), (32, 42)), ((64, 48), (42, 32))])
def test_prepare_shorter_side_then_centre_crop(hw, resized):
    a = np.asarray(make_rgb(hw[1], hw[0]))
    assert a.shape[:2] == hw
    x = prepare([a], 32, MEAN, STD)
    assert x.shape == (1, 3, 32, 32)
    torch.testing.assert_close(x, _reference(a, resized, (32, 32)), atol=1e-5, rtol=0)
    # not a squash of the whole image into 32x32
    squashed = _reference(a, (32, 32))
    assert (x - squashed).abs().max() > 0.1


def test_prepare_crops_without_resizing_when_shorter_side_fits():
    a = np.asarray(make_rgb(50, 32))
    x = prepare([a], 32, MEAN, STD)
    torch.testing.assert_close(x, _reference(a[:, 9:41], (32, 32)), atol=1e-6, rtol=0)
    b = np.asarray(make_rgb(32, 32))
    torch.testing.assert_close(prepare([b], 32, MEAN, STD), _reference(b, (32, 32)), atol=1e-6, rtol=0)


def test_prepare_batch_equals_per_image():
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (4, 30, 40, 3), dtype=np.uint8)
    batch = prepare(arr, 32, MEAN, STD)
    single = torch.cat([prepare([a], 32, MEAN, STD) for a in arr])
    assert batch.shape == (4, 3, 32, 32)
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)
    torch.testing.assert_close(prepare(list(arr), 32, MEAN, STD), single, atol=1e-5, rtol=0)
    # mixed sizes in one list keep their order
    mixed = [arr[0], np.asarray(make_rgb(28, 28)), arr[1]]
    out = prepare(mixed, 32, MEAN, STD)
    torch.testing.assert_close(out[0], single[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[2], single[1], atol=1e-5, rtol=0)


def test_prepare_rejects_non_uint8():
    with pytest.raises(StimuliError, match="uint8"):
        prepare(np.zeros((1, 8, 8, 3), np.float32), 8, MEAN, STD)


def test_prepare_normalisation_values():
    a = np.full((1, 8, 8, 3), [0, 51, 255], dtype=np.uint8)
    x = prepare(a, 8, MEAN, STD)
    expect = [(0 - MEAN[0]) / STD[0], (0.2 - MEAN[1]) / STD[1], (1 - MEAN[2]) / STD[2]]
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor(expect), atol=1e-6, rtol=0)


# -- arrays and the built-in ----------------------------------------------------------------
def test_from_arrays():
    grey = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    s = load_stimuli(grey, ids=["p", "q"], labels=["x", "y"])
    assert s.ids == ["p", "q"] and s.label_names == ["x", "y"]
    a = s.load([1])[0]
    assert a.shape == (3, 4, 3) and (a == grey[1][:, :, None]).all()
    with pytest.raises(StimuliError, match="uint8"):
        from_arrays(np.zeros((2, 3, 4, 3), np.float32))
    with pytest.raises(StimuliError, match="2 ids for 1 images"):
        from_arrays(np.zeros((1, 3, 4, 3), np.uint8), ids=["a", "b"])
    with pytest.raises(StimuliError, match="not unique"):
        from_arrays(np.zeros((2, 3, 4, 3), np.uint8), ids=["a", "a"])
    assert from_arrays(grey).fingerprint() != from_arrays(grey[::-1].copy()).fingerprint()


def test_builtin_fashion_mnist():
    s = load_stimuli("builtin:fashion-mnist")
    assert isinstance(s, Stimuli) and len(s) == 500 and s.source == "builtin:fashion-mnist"
    assert s.ids[0] == "tshirt_top/test_00019"
    assert set(s.label_names) <= set(FASHION_CLASSES)
    assert [s.label_names.count(c) for c in FASHION_CLASSES] == [50] * 10
    assert s.label_names == sorted(s.label_names, key=FASHION_CLASSES.index)  # class order
    assert all(i.split("/")[0] == n for i, n in zip(s.ids, s.label_names))
    assert s.labels_for(FASHION_CLASSES).tolist() == [c for c in range(10) for _ in range(50)]
    idx = [int(i.split("_")[-1]) for i in s.ids]
    for c in range(10):
        assert idx[50 * c:50 * c + 50] == sorted(idx[50 * c:50 * c + 50])
    imgs = s.load(range(500))
    assert all(a.shape == (28, 28, 3) and a.dtype == np.uint8 for a in imgs)
    assert all((a == a[:, :, :1]).all() for a in imgs)  # grey replicated
    x = prepare(imgs[:10], 32, (0.2860,) * 3, (0.3530,) * 3)
    assert x.shape == (10, 3, 32, 32)


def _read_idx(path):
    data = gzip.open(path).read()
    magic = struct.unpack(">I", data[:4])[0]
    nd = magic & 0xFF
    dims = struct.unpack(f">{nd}I", data[4:4 + 4 * nd])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


@pytest.mark.skipif(not (DEBIAN_FMNIST / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_builtin_fashion_mnist_matches_debian_test_set():
    labels = _read_idx(DEBIAN_FMNIST / "t10k-labels-idx1-ubyte.gz")
    images = _read_idx(DEBIAN_FMNIST / "t10k-images-idx3-ubyte.gz")
    expect = np.concatenate([np.flatnonzero(labels == c)[:50] for c in range(10)])
    s = load_stimuli("builtin:fashion-mnist")
    assert s.ids == [f"{FASHION_CLASSES[labels[i]]}/test_{i:05d}" for i in expect]
    got = np.stack(s.load(range(500)))[..., 0]
    np.testing.assert_array_equal(got, images[expect])
