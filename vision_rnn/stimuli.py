"""Stimuli: ids, folder labels, metadata and images from folders, HDF5, arrays or built-ins.

A :class:`Stimuli` knows its ids, each stimulus' ``label_name`` (the first
sub-folder for a folder source) and optional metadata; images are decoded on
demand, one batch at a time. Labels are resolved against a model's classes,
and images resized and normalised to its input, at extraction.

Every image becomes 8-bit RGB the same way whatever its file mode (grey,
palette, RGBA, CMYK, 16-bit, EXIF-rotated), then :func:`prepare` resizes the
shorter side to the model's input size (bilinear, antialiased), crops the
centre and normalises. Training uses the same :func:`prepare`, so a model sees
the same numbers whether an image comes from a data set or from a PNG file.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import StimuliError
from .stimulus_ids import match_rows

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
BUILTIN = {"fashion-mnist": "fashion_mnist_500.npz"}
DATA_DIR = Path(__file__).parent / "data"
FLOAT_BYTES = 64 * 2**20
SCAN_ALL_BELOW = 5000     # folders this small have every file decoded when one is found unreadable


# -- decoding ------------------------------------------------------------------------------
def decode_image(path, size: int | None = None) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB: first frame, EXIF orientation applied,
    16-bit scaled (not clipped) to 8 bits, transparency composited onto white.

    ``size`` (the model input it is for) lets a JPEG much larger than that decode at a
    reduced scale (DCT scaling: 1/2, 1/4 or 1/8, Pillow's ``draft``) that keeps both
    sides at least ``2 * size``; :func:`prepare` then resizes it with antialiasing. A
    12-megapixel photo for a 64-pixel model decodes at 1/8 scale: 64 times fewer pixels.
    Extraction and training (:func:`vision_rnn.datasets.open_training_data`) decode the
    same way, so a model sees the same numbers from the same file.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.seek(0)
        if size is not None and im.format == "JPEG":
            im.draft("RGB", (2 * int(size), 2 * int(size)))
        im = ImageOps.exif_transpose(im)
        return to_rgb(im)


def to_rgb(im) -> np.ndarray:
    """A PIL image of any mode -> (H, W, 3) uint8."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.float64)
        grey = np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im).astype(np.float64)
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        a = np.asarray(im).astype(np.float64)
        alpha = a[:, :, 3:4] / 255.0
        rgb = a[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def prepare(images, size: int, mean: Sequence[float], std: Sequence[float]):
    """uint8 RGB images -> normalised float tensor (N, 3, size, size).

    ``images`` is an array (N, H, W, 3) or a list of (H, W, 3) arrays of any
    sizes. The shorter side is resized to ``size`` (bilinear, antialiased),
    the centre cropped, then ``(x / 255 - mean) / std`` per channel.
    """
    import torch

    stacked = isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4
    if stacked:
        groups = [list(range(len(images)))]
    else:
        # images of one shape are resized together (the same numbers as one by one, much faster)
        by_shape: dict = {}
        for i, im in enumerate(images):
            by_shape.setdefault(tuple(im.shape), []).append(i)
        groups = list(by_shape.values())
    x = torch.empty((len(images), 3, size, size))
    for idx in groups:
        h, w = images[idx[0]].shape[:2]
        per = max(1, FLOAT_BYTES // (3 * h * w * 4))       # never a float copy of more than 64 MiB at once
        for lo in range(0, len(idx), per):
            part = idx[lo:lo + per]
            batch = images[part[0]:part[-1] + 1] if stacked else np.stack([images[i] for i in part])
            x[part] = _resize_crop(_to_float(batch), size)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def _to_float(batch):
    import torch

    t = torch.from_numpy(np.require(batch, requirements=["C", "W"])) if isinstance(batch, np.ndarray) else batch
    if t.dtype != torch.uint8:
        raise StimuliError(f"images must be uint8 (got {t.dtype})")
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def _resize_crop(x, size: int):
    """Shorter side to ``size`` (bilinear, antialiased), then the centre ``size`` x ``size``:
    torchvision's ``resize`` + ``center_crop`` number for number, without importing torchvision."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if min(h, w) != size:
        shape = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
        x = F.interpolate(x, size=shape, mode="bilinear", antialias=True, align_corners=False)
        h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


# -- the Stimuli object --------------------------------------------------------------------
class Stimuli:
    """A set of stimuli: ids, folder labels, metadata and a way to decode images.

    >>> import vision_rnn as vrnn
    >>> stim = vrnn.load_stimuli("builtin:fashion-mnist")
    >>> len(stim), stim.ids[0]
    (500, 'tshirt_top/test_00019')
    """

    def __init__(self, ids: Sequence[str], loader: Callable[[Sequence[int]], list],
                 label_names: Sequence[str] | None = None, metadata=None, source: str = "",
                 name: str = "stimuli", files: Sequence[Path] | None = None, fingerprint: str | None = None):
        self.ids = [str(i) for i in ids]
        if len(set(self.ids)) != len(self.ids):
            raise StimuliError(f"{source or name}: stimulus ids are not unique")
        self._loader = loader
        self._sized = "size" in inspect.signature(loader).parameters
        self.label_names = [str(n) for n in label_names] if label_names is not None else [""] * len(self.ids)
        if len(self.label_names) != len(self.ids):
            raise StimuliError(f"{source or name}: {len(self.label_names)} label names for {len(self.ids)} "
                               "stimuli; give one per stimulus")
        if not self.ids:
            raise StimuliError(f"{source or name}: no stimuli")
        self.metadata = metadata  # pandas.DataFrame indexed like ids, or None
        self.metadata_source = "metadata"     # where the metadata came from (a CSV path), for messages
        self.metadata_unmatched: list[str] = []
        self.source = source
        self.name = name
        self.files = list(files) if files is not None else None
        self.skipped: list[str] = []
        self._fingerprint = fingerprint

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        return f"Stimuli({self.source!r}, {len(self)} stimuli)"

    def load(self, indices: Sequence[int], size: int | None = None) -> list:
        """Decode the images at ``indices`` as (H, W, 3) uint8 arrays; ``size``: the model
        input they are for (large JPEG files then decode at a reduced scale, see
        :func:`decode_image`)."""
        if self._sized:
            return self._loader(list(indices), size=size)
        return self._loader(list(indices))

    def batches(self, batch_size: int, size: int, mean, std, start: int = 0):
        """Yield ``(first_index, tensor)`` batches prepared for a model input."""
        for i in range(start, len(self), batch_size):
            idx = range(i, min(i + batch_size, len(self)))
            yield i, prepare(self.load(idx, size), size, mean, std)

    def labels_for(self, classes: Sequence[str]) -> np.ndarray:
        """Class index of each stimulus' label_name in ``classes``, -1 where none matches."""
        lookup = {c: i for i, c in enumerate(classes)}
        return np.array([lookup.get(n, -1) for n in self.label_names], dtype=np.int64)

    def subset(self, indices: Sequence[int]) -> "Stimuli":
        indices = list(indices)
        parent = self

        def loader(idx, size=None):
            return parent.load([indices[i] for i in idx], size)

        meta = self.metadata.iloc[indices] if self.metadata is not None else None
        files = [self.files[i] for i in indices] if self.files is not None else None
        out = Stimuli([self.ids[i] for i in indices], loader, [self.label_names[i] for i in indices],
                      meta, self.source, self.name, files)
        out.metadata_source = self.metadata_source
        return out

    def with_metadata(self, csv_path, layers: Sequence[str] = ()) -> "Stimuli":
        """Add the columns of a CSV with a ``stimulus`` column as per-stimulus metadata.

        Each row's ``stimulus`` matches a stimulus id exactly, else the file stem
        of exactly one stimulus (no folders, no extension). A row whose stem names
        several stimuli, or two rows naming one stimulus, are refused; rows that
        match nothing are reported (a :class:`~vision_rnn.errors.VRNNWarning`) and
        left out. Stimuli without a row get NaN (numbers) or an empty string.
        Column names must fit the activation file: netCDF's naming rules and none
        of the layout's names or ``layers`` (the model's layers; extraction checks
        them again), see :func:`vision_rnn.store.check_metadata_names`.
        """
        import warnings

        import pandas as pd

        from .errors import VRNNError, VRNNWarning
        from .store import check_metadata_names

        csv_path = Path(csv_path)
        if not csv_path.exists():
            raise StimuliError(f"metadata file {csv_path} does not exist")
        if csv_path.is_dir():
            raise StimuliError(f"metadata file {csv_path} is a folder; pass a CSV file")
        try:
            df = pd.read_csv(csv_path)
            if "stimulus" in df.columns:     # ids as written: "NA" or "001" are ids, not missing or numbers
                df["stimulus"] = pd.read_csv(csv_path, usecols=["stimulus"], dtype=str,
                                             keep_default_na=False)["stimulus"].to_numpy()
        except Exception as e:
            raise StimuliError(f"{csv_path}: cannot read as CSV ({str(e).splitlines()[0] if str(e) else e.__class__.__name__})") from None
        if "stimulus" not in df.columns:
            raise StimuliError(f"{csv_path}: needs a 'stimulus' column naming stimulus ids; "
                               f"it has {list(df.columns)}")
        try:
            check_metadata_names([c for c in df.columns if c != "stimulus"], layers, where=str(csv_path))
        except VRNNError as e:
            raise StimuliError(str(e)) from None
        if df["stimulus"].duplicated().any():
            dup = df["stimulus"][df["stimulus"].duplicated()].iloc[0]
            raise StimuliError(f"{csv_path}: stimulus {dup!r} appears twice")
        rows, unmatched = match_rows(self.ids, list(df["stimulus"]), str(csv_path))
        if not rows:
            raise StimuliError(f"{csv_path}: no 'stimulus' value matches a stimulus id "
                               f"(e.g. {self.ids[0]!r}) or file stem")
        missing = len(self.ids) - len(rows)
        if unmatched or missing:
            parts = []
            if unmatched:
                shown = ", ".join(repr(u) for u in unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
                parts.append(f"{len(unmatched)} row(s) match no stimulus and are left out ({shown})")
            if missing:
                parts.append(f"{missing} of {len(self.ids)} stimuli have no row (their values are empty)")
            warnings.warn(f"{csv_path}: " + "; ".join(parts), VRNNWarning, stacklevel=2)
        order = np.full(len(self.ids), -1)
        for stim_index, row in rows.items():
            order[stim_index] = row
        values = df.drop(columns="stimulus").reset_index(drop=True)
        meta = values.reindex(order).reset_index(drop=True)     # -1 is not a row label: a missing row
        for col in meta.columns:
            if meta[col].dtype == object or pd.api.types.is_string_dtype(meta[col].dtype):
                meta[col] = meta[col].fillna("").astype(str)
        meta.index = self.ids
        out = self.subset(range(len(self)))
        out.metadata = meta
        out.metadata_source = str(csv_path)
        out.metadata_unmatched = list(unmatched)
        out.skipped = list(self.skipped)
        out._fingerprint = self._fingerprint
        return out

    def fingerprint(self) -> str:
        """A hash of ids, labels and content keys (file sizes, array bytes): what resume checks."""
        h = hashlib.sha256((self._fingerprint or "").encode())
        for i, n in zip(self.ids, self.label_names):
            h.update(i.encode() + b"\0" + n.encode() + b"\0")
        if self.files is not None:
            for f in self.files:
                h.update(str(os.path.getsize(f)).encode())
        return h.hexdigest()

    def decode_errors(self, indices: Sequence[int] | None = None, size: int | None = None,
                      header_only: bool = False) -> dict:
        """``{index: reason}`` of the images at ``indices`` (default all) that do not decode for a
        model input of ``size``; ``header_only``: that fail the quick header check instead."""
        from PIL import Image

        out = {}
        for i in range(len(self)) if indices is None else indices:
            try:
                if self.files is None:
                    self.load([i], size)
                    continue
                f = self.files[i]
                if os.path.getsize(f) == 0:
                    raise OSError("empty file")
                if header_only:
                    with Image.open(f) as im:
                        im.verify()
                else:
                    decode_image(f, size)
            except Exception as e:  # noqa: BLE001 - any failure to read an image is what is reported
                out[i] = str(e).split("\n")[0] or e.__class__.__name__
        return out

    def check(self, skip_bad: bool = False, size: int | None = None) -> "Stimuli":
        """Find unreadable image files before anything is written.

        Without ``skip_bad`` every file's header is checked and the bad ones are
        listed in one error (for a folder of up to :data:`SCAN_ALL_BELOW` files, with every
        file a full decode finds bad, e.g. a truncated JPEG; extraction finds those of a
        larger folder as it decodes them). With ``skip_bad`` every image is fully decoded
        (for a model input of ``size``, see :func:`decode_image`) and the bad ones are
        dropped (their ids kept in ``.skipped``).
        """
        if self.files is None:
            return self
        bad = self.decode_errors(size=size, header_only=not skip_bad)
        if not bad:
            return self
        if not skip_bad:
            if len(self.files) <= SCAN_ALL_BELOW:      # a small folder: name the truncated files too, at once
                bad.update(self.decode_errors([i for i in range(len(self)) if i not in bad], size))
            raise StimuliError(f"{unreadable(self, bad)}; fix or remove them, or pass `skip_bad=True`")
        keep = [i for i in range(len(self)) if i not in bad]
        if not keep:
            raise StimuliError(f"{self.source}: every image is unreadable")
        out = self.subset(keep)
        out.skipped = [self.ids[i] for i in sorted(bad)]
        return out


def unreadable(stim: Stimuli, bad: dict) -> str:
    """'N unreadable image(s) in SOURCE: id (reason), ...' for ``{index: reason}``, in stimulus order."""
    names = [f"{stim.ids[i]} ({bad[i]})" for i in sorted(bad)]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"{len(names)} unreadable image(s) in {stim.source}: {', '.join(names[:5])}{more}"


# -- sources -------------------------------------------------------------------------------
def load_stimuli(source, metadata=None, ids=None, labels=None, layers: Sequence[str] = ()) -> Stimuli:
    """Stimuli from a folder, ``builtin:fashion-mnist``, ``file.h5:split``, or an array.

    Parameters
    ----------
    source : str, os.PathLike, numpy.ndarray or Stimuli
        One of

        - a folder: every image below it (png, jpg/jpeg, bmp, gif, tif/tiff, webp),
          sorted by relative path; the id is that path with '/' separators and the
          first sub-folder is the label_name;
        - ``builtin:fashion-mnist``: 500 Fashion-MNIST test images, 50 per class;
        - ``PATH.h5:SPLIT``: a MiniEcoset-layout HDF5 file (``SPLIT/data``,
          ``SPLIT/labels``, ``categories``);
        - ``kriegeskorte92:PATH``: the 92 images of Kriegeskorte et al. (2008);
        - a uint8 array (N, H, W, 3) (or (N, H, W) grey), with optional ``ids`` and
          ``labels`` (label names);
        - a :class:`Stimuli`, returned as it is (with ``metadata`` added).
    metadata : str or os.PathLike, optional
        A CSV with a ``stimulus`` column (see :meth:`Stimuli.with_metadata`).
    ids : sequence of str, optional
        For an array: one id per image (default ``00000``, ``00001``, ...).
    labels : sequence of str, optional
        For an array: one label name per image.
    layers : sequence of str, optional
        The names of the model's layers, which the metadata's columns may not take.

    Returns
    -------
    Stimuli
        The stimuli: ids, label names, metadata and a way to decode the images.

    Examples
    --------
    >>> stim = load_stimuli("builtin:fashion-mnist")
    >>> len(stim), stim.label_names[0]
    (500, 'tshirt_top')
    """
    if isinstance(source, Stimuli):
        stim = source
    elif isinstance(source, np.ndarray):
        stim = from_arrays(source, ids=ids, label_names=labels)
    else:
        source = os.fspath(source)
        if source.startswith("builtin:"):
            stim = _builtin(source.split(":", 1)[1])
        elif source.startswith("kriegeskorte92:"):
            stim = kriegeskorte92_stimuli(source.split(":", 1)[1] or None)
        elif _h5_split(source):
            stim = from_hdf5(*_h5_split(source))
        else:
            stim = from_folder(source)
    if metadata is not None:
        stim = stim.with_metadata(metadata, layers)
    return stim


# -- the 92-image set (Kriegeskorte et al. 2008) --------------------------------------------
NINETY_TWO_FILE = "Kriegeskorte_Neuron2008_supplementalData.mat"
NINETY_TWO_IDS = [f"img_{i:02d}" for i in range(1, 93)]
NINETY_TWO_FLAGS = ("human", "face", "animal", "natural")


def kriegeskorte92_stimuli(path=None) -> Stimuli:
    """The 92 object images of Kriegeskorte et al. (2008) as :class:`Stimuli`.

    Parameters
    ----------
    path : folder holding ``Kriegeskorte_Neuron2008_supplementalData.mat`` (default
        ``$VRNN_DATA/kriegeskorte2008``, else ``../shared/data/kriegeskorte2008``).

    Returns
    -------
    Stimuli
        92 RGB images 175 x 175, ids ``img_01`` .. ``img_92``, ``label_names`` the category
        (e.g. ``"human face"``), metadata columns ``category``, ``human``, ``face``,
        ``animal``, ``natural`` (0/1), which extraction turns into stimulus coordinates.
        The recorded RDMs are :func:`vision_rnn.recordings.sets.kriegeskorte92`.
    """
    import pandas as pd
    import scipy.io

    from .datafolder import data_folder
    from .errors import DataError

    folder = data_folder(path, "kriegeskorte2008", (NINETY_TWO_FILE,))
    try:
        objs = scipy.io.loadmat(folder / NINETY_TWO_FILE, variable_names=["stimuli_92objs"])["stimuli_92objs"][0]
        images = np.stack([np.asarray(o["image"], dtype=np.uint8) for o in objs])
        text = lambda x: str(np.asarray(x).ravel()[0])
        meta = pd.DataFrame({"category": [text(o["category"]) for o in objs],
                             **{f: [int(np.asarray(o[f]).ravel()[0]) for o in objs] for f in NINETY_TWO_FLAGS}},
                            index=pd.Index(NINETY_TWO_IDS, name="stimulus"))
    except (KeyError, IndexError, ValueError) as e:
        raise DataError(f"{folder}: {NINETY_TWO_FILE} does not have the published layout ({e})") from None
    except Exception as e:
        raise DataError(f"{folder}: cannot read {NINETY_TWO_FILE} ({str(e).splitlines()[0]})") from None
    if images.shape != (92, 175, 175, 3):
        raise DataError(f"{folder}: unexpected images {images.shape} in {NINETY_TWO_FILE}; expected (92, 175, 175, 3)")
    stim = from_arrays(images, ids=NINETY_TWO_IDS, label_names=list(meta["category"]), name="kriegeskorte92")
    stim.metadata = meta
    stim.source = f"kriegeskorte92:{folder}"
    return stim


def _h5_split(source: str):
    for ext in (".h5", ".hdf5"):
        marker = ext + ":"
        if marker in source:
            path, split = source.rsplit(":", 1)
            return path, split
        if source.endswith(ext):
            raise StimuliError(f"{source}: name the split of the HDF5 file, e.g. {source}:test")
    return None


def from_folder(root) -> Stimuli:
    """Stimuli from every image below a folder.

    Images are the files with an image extension (png, jpg/jpeg, bmp, gif,
    tif/tiff, webp), hidden files and folders left out, sorted by relative path;
    images are decoded only when loaded.

    Parameters
    ----------
    root : str or os.PathLike
        The folder.

    Returns
    -------
    Stimuli
        One stimulus per image: the id is its path relative to ``root`` with '/'
        separators, the label name its first sub-folder ("" for an image directly
        in ``root``); ``files`` holds the paths.
    """
    root = Path(root)
    if not root.exists():
        raise StimuliError(f"stimuli folder {root} does not exist")
    if not root.is_dir():
        raise StimuliError(f"{root} is not a folder (or builtin:NAME, FILE.h5:SPLIT); "
                           "pass a folder of images")
    files, others = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if fn.startswith("."):
                continue
            if fn.lower().endswith(IMAGE_EXTENSIONS):
                files.append(Path(dirpath) / fn)
            else:
                others += 1
    if not files:
        what = f"{others} file(s) but none with an image extension" if others else "nothing"
        raise StimuliError(f"stimuli folder {root} holds {what}; "
                           f"expected images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    rel = sorted((f.relative_to(root).as_posix(), f) for f in files)
    ids = [r for r, _ in rel]
    paths = [f for _, f in rel]
    labels = [r.split("/")[0] if "/" in r else "" for r in ids]

    def loader(idx, size=None):
        out = []
        for i in idx:
            try:
                out.append(decode_image(paths[i], size))
            except Exception as e:
                raise StimuliError(f"unreadable image {paths[i]} ({str(e).splitlines()[0] if str(e) else e.__class__.__name__}); "
                                   "fix or remove it, or pass `skip_bad=True`") from None
        return out

    return Stimuli(ids, loader, labels, source=str(root), name=root.resolve().name, files=paths)


def from_arrays(images, ids=None, label_names=None, name="array") -> Stimuli:
    """Stimuli from an array of images held in memory.

    Parameters
    ----------
    images : array-like
        uint8 images (N, H, W, 3), or (N, H, W) grey (repeated into 3 channels);
        at least one image of at least 1x1 pixels.
    ids : sequence of str, optional
        One id per image; default ``00000``, ``00001``, ...
    label_names : sequence of str, optional
        One label name per image (the class names of a model); default none.
    name : str, optional
        The name of the set.

    Returns
    -------
    Stimuli
        The images, with source ``array:HASH`` and a fingerprint from the pixels.

    Examples
    --------
    >>> import numpy as np
    >>> stim = from_arrays(np.zeros((2, 4, 4), dtype=np.uint8), label_names=["a", "b"])
    >>> stim.ids, stim.label_names
    (['00000', '00001'], ['a', 'b'])
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=3)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise StimuliError(f"image array must be uint8 (N, H, W, 3) or (N, H, W); "
                           f"got {images.dtype} {images.shape}")
    if 0 in images.shape[:3]:
        raise StimuliError(f"image array holds no images, or images of no pixels (shape {images.shape}); "
                           "pass at least one image of at least 1x1 pixels")
    ids = [f"{i:05d}" for i in range(len(images))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(images):
        raise StimuliError(f"`ids`: {len(ids)} ids for {len(images)} images; give one id per image")
    if label_names is not None and len(list(label_names)) != len(images):
        raise StimuliError(f"`labels`: {len(list(label_names))} labels for {len(images)} images; give one "
                           "label name per image (or None)")
    h = hashlib.sha256(images.tobytes()).hexdigest()
    return Stimuli(ids, lambda idx: [images[i] for i in idx], label_names,
                   source=f"array:{h[:12]}", name=name, fingerprint=h)


def _builtin(name: str) -> Stimuli:
    if name not in BUILTIN:
        raise StimuliError(f"unknown built-in stimuli {name!r}; available: "
                           + ", ".join(f"builtin:{k}" for k in BUILTIN))
    path = DATA_DIR / BUILTIN[name]
    with np.load(path) as z:
        images, ids, label_names = z["images"], [str(i) for i in z["ids"]], [str(n) for n in z["label_names"]]
    stim = from_arrays(images, ids=ids, label_names=label_names, name=name)
    stim.source = f"builtin:{name}"
    return stim


def from_hdf5(path, split: str) -> Stimuli:
    """Stimuli from one split of a MiniEcoset-layout HDF5 file.

    The file holds ``SPLIT/data`` (N, H, W, 3) uint8 images, ``SPLIT/labels``
    (N integer class indices) and optionally ``categories`` (the class names);
    images are read from the file only when loaded.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.
    split : str
        The group of the split, e.g. ``"test"``.

    Returns
    -------
    Stimuli
        One stimulus per image, ids ``SPLIT/000000``, ...; the label name of each is
        its category (the class index as text where ``categories`` has none).
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise StimuliError(f"HDF5 file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StimuliError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        if not isinstance(f.get(split), h5py.Group) or "data" not in f[split] or "labels" not in f[split]:
            splits = [k for k in f if isinstance(f[k], h5py.Group)]
            raise StimuliError(f"{path}: no group '{split}' with 'data' and 'labels' "
                               f"(groups: {', '.join(splits) or 'none'})")
        data, raw_labels = f[split]["data"], f[split]["labels"]
        if not isinstance(data, h5py.Dataset) or not isinstance(raw_labels, h5py.Dataset):
            raise StimuliError(f"{path}:{split}: 'data' and 'labels' must be datasets, not groups")
        shape, dtype = data.shape, data.dtype
        if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8:
            raise StimuliError(f"{path}:{split}/data must be (N, H, W, 3) uint8 images; got {dtype} {shape}")
        n = shape[0]
        if n == 0 or 0 in shape[1:3]:
            raise StimuliError(f"{path}:{split}/data holds no images (shape {shape}); pass a split with images")
        if raw_labels.dtype.kind not in "iu" or raw_labels.size != n:
            raise StimuliError(f"{path}:{split}/labels must be {n} integer class indices, one per image; "
                               f"got {raw_labels.dtype} {raw_labels.shape}")
        labels = np.asarray(raw_labels[()]).astype(np.int64).ravel()
        try:
            cats = [c.decode() if isinstance(c, bytes) else str(c) for c in np.ravel(f["categories"][()])] \
                if "categories" in f else None
        except (UnicodeDecodeError, TypeError, ValueError) as e:
            raise StimuliError(f"{path}: 'categories' must be class names (UTF-8 strings); {e}") from None
    names = [cats[l] if cats is not None and 0 <= l < len(cats) else str(l) for l in labels]
    ids = [f"{split}/{i:06d}" for i in range(n)]

    def loader(idx):
        with h5py.File(path, "r") as fh:
            data = fh[split]["data"]
            lo, hi = min(idx), max(idx) + 1
            block = data[lo:hi]
            return [block[i - lo] for i in idx]

    return Stimuli(ids, loader, names, source=f"{path}:{split}", name=f"{path.stem}_{split}",
                   fingerprint=hashlib.sha256(f"{path.resolve()}:{split}:{n}:{os.path.getsize(path)}".encode()).hexdigest())
