"""The published 92-image data sets: Kriegeskorte et al. (2008) and Cichy et al. (2014).

Both use the same 92 object images (faces, bodies, animals, natural and
man-made objects). See ``data_cards/kriegeskorte92.md`` and
``data_cards/cichy2014-meg.md`` for provenance, licences and citations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datafolder import data_dir, data_folder
from ..errors import DataError
from ..stimuli import NINETY_TWO_FILE as SUPPLEMENT
from ..stimuli import NINETY_TWO_IDS as IDS
from ..stimuli import kriegeskorte92_stimuli

BRAIN_RDMS = "92_brainRDMs.mat"
MEG_FILE = "MEG_decoding_RDMs.mat"
MEG_VARIABLE = "MEG_decoding_RDMs"


@dataclass
class NinetyTwo:
    """The 92-image set: ``stimuli`` (a :class:`~vision_rnn.stimuli.Stimuli`) and ``rdms``."""

    stimuli: object
    rdms: object
    path: Path

    def __repr__(self):
        return f"NinetyTwo({str(self.path)!r}: 92 stimuli, RDMs {', '.join(self.rdms.data_vars)})"


def _text(x) -> str:
    return str(np.asarray(x).ravel()[0])


def kriegeskorte92(path=None) -> NinetyTwo:
    """The 92 images with monkey and human IT RDMs (Kriegeskorte et al., 2008, Neuron).

    The Figure 1 RDMs are stored as condensed vectors of 4186 = 92*91/2 values in the order
    of scipy's ``squareform`` (row by row above the diagonal), which for a symmetric matrix is
    MATLAB's column order below the diagonal; the human one equals the mean of the 8 full
    session matrices in that order.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The folder with ``Kriegeskorte_Neuron2008_supplementalData.mat`` and
        ``92_brainRDMs.mat`` (default ``$VRNN_DATA/kriegeskorte2008``, else
        ``../shared/data/kriegeskorte2008``).

    Returns
    -------
    NinetyTwo
        With

        - ``.stimuli``: 92 RGB images 175 x 175, ids ``img_01`` .. ``img_92``, ``label_names`` the
          category (e.g. ``"human face"``), metadata columns ``category``, ``human``, ``face``,
          ``animal``, ``natural`` (0/1), which extraction turns into stimulus coordinates;
        - ``.rdms``: an ``xarray.Dataset`` with ``monkey_it`` (stimulus, stimulus_; 674 neurons,
          Kiani et al. 2007), ``human_it`` (the fMRI RDM of Figure 1: the average of the 8
          session RDMs, 316 voxels) and ``human_it_sessions`` (subject, session, stimulus,
          stimulus_) for subjects BE, KO, SN, TI x sessions 1, 2;
        - ``.path``: the folder read.

    Examples
    --------
    >>> ds = kriegeskorte92()                                   # doctest: +SKIP
    >>> ds.rdms.human_it_sessions.sizes                         # doctest: +SKIP
    Frozen({'subject': 4, 'session': 2, 'stimulus': 92, 'stimulus_': 92})
    """
    import scipy.io
    import xarray as xr
    from scipy.spatial.distance import squareform

    folder = data_folder(path, "kriegeskorte2008", (SUPPLEMENT, BRAIN_RDMS))
    stim = kriegeskorte92_stimuli(folder)
    meta = stim.metadata
    try:
        fig1 = scipy.io.loadmat(folder / SUPPLEMENT, variable_names=["RDMs_mIT_hIT_fig1"])["RDMs_mIT_hIT_fig1"][0]
        sessions = scipy.io.loadmat(folder / BRAIN_RDMS)["RDMs"][0]
        vectors = {_text(r["name"]): np.asarray(r["RDM"], dtype=np.float64).ravel() for r in fig1}
    except (KeyError, IndexError, ValueError) as e:
        raise DataError(f"{folder}: the .mat files do not have the published layout ({e})") from None
    except Exception as e:
        raise DataError(f"{folder}: cannot read the 92-image .mat files ({str(e).splitlines()[0]})") from None
    if set(vectors) != {"mIT_674neurons", "hITvisStim_316vx"}:
        raise DataError(f"{folder}: unexpected RDMs {sorted(vectors)} in {SUPPLEMENT}")

    subjects, full = [], []
    for s in range(sessions.shape[0]):
        name = _text(sessions[s, 0]["name"])          # "hIT | BE | Session: 1"
        subjects.append(name.split("|")[1].strip())
        full.append([np.asarray(sessions[s, k]["RDM"], dtype=np.float64) for k in range(sessions.shape[1])])
    coords = {"stimulus": IDS, "stimulus_": IDS, **{c: ("stimulus", meta[c].to_numpy()) for c in meta.columns}}
    sq = ("stimulus", "stimulus_")
    rdms = xr.Dataset(
        {"monkey_it": (sq, squareform(vectors["mIT_674neurons"])),
         "human_it": (sq, squareform(vectors["hITvisStim_316vx"])),
         "human_it_sessions": (("subject", "session") + sq, np.asarray(full))},
        coords={**coords, "subject": subjects, "session": np.arange(1, sessions.shape[1] + 1)})
    rdms["monkey_it"].attrs = {"description": "monkey IT, 674 neurons (Kiani et al. 2007), 1 - Pearson r",
                               "method": "correlation"}
    rdms["human_it"].attrs = {"description": "human IT fMRI, 316 voxels, mean of 4 subjects x 2 sessions",
                              "method": "correlation"}
    rdms["human_it_sessions"].attrs = {"description": "human IT fMRI per subject and session",
                                       "method": "correlation"}
    rdms.attrs = {"source": str(folder), "citation": "Kriegeskorte et al. (2008) Neuron 60(6):1126-1141"}
    return NinetyTwo(stim, rdms, folder)


def cichy2014_meg(path=None, bin_ms: float | None = None, variable: str = MEG_VARIABLE,
                  first_ms: float = -100.0, step_ms: float = 1.0):
    """Time-resolved MEG RDMs of the 92 images (Cichy, Pantazis & Oliva 2014), read lazily.

    The file is MATLAB v7.3 (HDF5): the variable ``MEG_decoding_RDMs`` is subject (16)
    x session (2) x time (1301: -100 .. 1200 ms in 1 ms steps) x image x image in
    MATLAB, which h5py sees reversed, (92, 92, 1301, 2, 16). Values are pairwise
    decoding accuracies (higher = more dissimilar), NaN on the diagonal.

    Parameters
    ----------
    path : str or os.PathLike, optional
        ``MEG_decoding_RDMs.mat`` or its folder (default ``$VRNN_DATA/cichy2014/``).
    bin_ms : float, optional
        Average consecutive samples into bins of this length in ms (a trailing
        partial bin is dropped); a whole number of samples. Default: no binning.
    variable : str, optional
        The variable to read; a file without that variable name is accepted if
        it holds exactly one 5-D dataset.
    first_ms : float, optional
        The time of the file's first sample in ms.
    step_ms : float, optional
        The time between the file's samples in ms.

    Returns
    -------
    xarray.DataArray
        ``meg_decoding_rdm``, dask-backed (subject, session, time, stimulus,
        stimulus_), ``time`` in ms with ``time_bin_start``/``time_bin_end``;
        nothing is read until values are used.
    """
    import dask.array
    import h5py
    import xarray as xr

    p = Path(path) if path is not None else data_dir("cichy2014")
    if p.is_dir():
        p = p / MEG_FILE
    if not p.exists():
        raise DataError(f"{p} does not exist; download MEG_decoding_RDMs.mat (see data_cards/cichy2014-meg.md) "
                        "and pass its path")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise DataError(f"{p}: not a MATLAB v7.3 / HDF5 file ({e}); the MEG RDMs are distributed as v7.3") from None
    if variable in f:
        dset = f[variable]
    else:
        five = [k for k in f if isinstance(f[k], h5py.Dataset) and f[k].ndim == 5]
        if len(five) != 1:
            f.close()
            raise DataError(f"{p}: no variable {variable!r} and {len(five)} 5-D datasets; pass variable= its name")
        dset = f[five[0]]
    shape = dset.shape
    if len(shape) != 5 or shape[0] != shape[1]:
        f.close()
        raise DataError(f"{p}: {dset.name} has shape {shape}; expected (image, image, time, session, subject) "
                        "as h5py reads MATLAB's subject x session x time x image x image")
    n_img, _, n_time, n_sess, n_subj = shape
    chunks = (n_img, n_img, min(n_time, 100), 1, 1)
    lazy = dask.array.from_array(dset, chunks=chunks, lock=True).transpose(4, 3, 2, 1, 0)
    times = first_ms + step_ms * np.arange(n_time)
    ids = IDS if n_img == 92 else [f"img_{i:02d}" for i in range(1, n_img + 1)]
    da = xr.DataArray(lazy, dims=("subject", "session", "time", "stimulus", "stimulus_"),
                      coords={"subject": np.arange(1, n_subj + 1), "session": np.arange(1, n_sess + 1),
                              "time": times, "time_bin_start": ("time", times - step_ms / 2),
                              "time_bin_end": ("time", times + step_ms / 2),
                              "stimulus": ids, "stimulus_": ids},
                      name="meg_decoding_rdm",
                      attrs={"source": str(p), "variable": dset.name.lstrip("/"),
                             "units": "pairwise decoding accuracy (as stored)", "method": "decoding"})
    if bin_ms:
        per = int(round(bin_ms / step_ms))
        if per < 1 or abs(per * step_ms - bin_ms) > 1e-9:
            raise DataError(f"bin_ms={bin_ms} is not a whole number of {step_ms} ms samples")
        if per > n_time:
            raise DataError(f"bin_ms={bin_ms} is longer than the recording ({n_time * step_ms} ms)")
        start = da["time_bin_start"].coarsen(time=per, boundary="trim").min()
        end = da["time_bin_end"].coarsen(time=per, boundary="trim").max()
        da = da.drop_vars(["time_bin_start", "time_bin_end"]).coarsen(time=per, boundary="trim").mean()
        da = da.assign_coords(time_bin_start=("time", start.values), time_bin_end=("time", end.values))
        da.attrs["bin_ms"] = float(bin_ms)
    return da
