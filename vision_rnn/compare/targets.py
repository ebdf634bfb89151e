"""What a RECORDING argument of ``vrnn compare`` resolves to: targets, each a set of RDMs.

A target is ``([subject,] time, stimulus, stimulus_)`` RDMs with ``time`` in ms
(one bin, NaN, for a static recording):

- a netCDF recording (:func:`vision_rnn.recordings.save_recording`) or a BrainIO
  assembly: one target per value of the neuroid coordinate ``region`` (one
  target named ``recording`` without it); RDMs of the repetition-averaged
  responses at every bin, with the ``rdm_method``. Where a neuroid coordinate
  ``subject`` (or ``animal``) has two or more values, each subject gets its own RDMs;
- ``kriegeskorte92:PATH``: ``monkey_it`` (one RDM) and ``human_it`` (4 subjects,
  the two sessions of each averaged), both static
  (:func:`~vision_rnn.recordings.kriegeskorte92`);
- ``cichy2014:PATH``: ``meg``, 16 subjects (sessions averaged) in 10 ms bins
  (:func:`~vision_rnn.recordings.cichy2014_meg`).

A recording's RDMs are made only after the stimuli are matched, on the shared ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.rsa import RDM_METHODS
from ..errors import CompareError

__all__ = ["Source", "Target", "load_source", "source_subset"]

RECORDING_HELP = "a netCDF recording, a BrainIO assembly, kriegeskorte92:PATH or cichy2014:PATH"
SUBJECT_COORDS = ("subject", "animal")
MEG_BIN_MS = 10.0
RDM_KINDS = tuple(m for m in RDM_METHODS if m != "crossnobis")


@dataclass
class Target:
    """RDMs of one recorded population; ``responses`` are the neuroids behind them, if any."""

    name: str
    rdms: xr.DataArray
    responses: xr.DataArray | None = None
    description: str = ""

    @property
    def static(self) -> bool:
        return self.rdms.sizes["time"] == 1

    @property
    def subjects(self) -> int:
        return self.rdms.sizes.get("subject", 0)


@dataclass
class Source:
    """What a RECORDING argument resolved to: its stimulus ids, targets and (if any) the recording.

    A recording's targets (its RDMs) are made on first use, after the stimuli are matched."""

    spec: str
    ids: list
    given_targets: list | None = None
    recording: xr.DataArray | None = None
    rdm_method: str = "correlation"

    @property
    def targets(self) -> list:
        if self.given_targets is None:
            self.given_targets = _recording_targets(self.recording, self.rdm_method)
        return self.given_targets


def _static(rdms: xr.DataArray, start=np.nan, end=np.nan) -> xr.DataArray:
    return rdms.expand_dims(time=[(start + end) / 2]).assign_coords(
        time_bin_start=("time", [start]), time_bin_end=("time", [end]))


def _recording_targets(rec: xr.DataArray, rdm_method: str) -> list:
    from ..analysis.rsa import rdm

    if "time" not in rec.dims:
        rec = rec.expand_dims(time=[np.nan])
    regions = [None]
    if "region" in rec.coords and rec["region"].dims == ("neuroid",):
        regions = list(dict.fromkeys(str(r) for r in rec["region"].values))
    targets = []
    for region in regions:
        part = rec if region is None else rec.isel(neuroid=np.flatnonzero(rec["region"].values.astype(str) == region))
        subj = next((c for c in SUBJECT_COORDS if c in part.coords and part[c].dims == ("neuroid",)
                     and len(set(part[c].values.tolist())) >= 2), None)
        if subj is None:
            rdms = rdm(part, rdm_method)
        else:
            names = list(dict.fromkeys(part[subj].values.tolist()))
            rdms = xr.concat([rdm(part.isel(neuroid=np.flatnonzero(part[subj].values == s)), rdm_method)
                              for s in names], dim=xr.DataArray([str(s) for s in names], dims="subject"))
        rdms = rdms.transpose(*(["subject"] if subj else []), "time", "stimulus", "stimulus_")
        n_neuroid = part.sizes["neuroid"]
        who = f"{len(set(part[subj].values.tolist()))} {subj}s, " if subj else ""
        targets.append(Target(region or "recording", rdms, part,
                              f"{region or 'recording'}: {who}{n_neuroid} neuroids, {rec.sizes['time']} bins"))
    return targets


def load_source(recording, rdm_method: str = "correlation") -> Source:
    """Resolve RECORDING (a path, ``kriegeskorte92:PATH``, ``cichy2014:PATH`` or a DataArray) to targets."""
    from ..recordings import check_recording, cichy2014_meg, from_assembly, kriegeskorte92, load_recording

    if rdm_method not in RDM_KINDS:
        raise CompareError(f"`rdm_method={rdm_method}`: not one of {', '.join(RDM_KINDS)}")
    if isinstance(recording, xr.DataArray):
        rec, spec = recording, str(recording.attrs.get("source", "recording (in memory)"))
        if "presentation" in rec.dims:                   # a BrainIO / Brain-Score assembly in memory
            rec = from_assembly(rec, spec)
    else:
        spec = os.fspath(recording)
        if spec.startswith("kriegeskorte92:"):
            k = kriegeskorte92(spec.split(":", 1)[1] or None)
            human = k.rdms["human_it_sessions"].mean("session")
            targets = [Target("monkey_it", _static(k.rdms["monkey_it"]), None,
                              "monkey IT, 674 neurons (Kiani et al. 2007), 1 - Pearson r"),
                       Target("human_it", _static(human).transpose("subject", "time", ...), None,
                              "human IT fMRI, 4 subjects (sessions averaged), 1 - Pearson r")]
            return Source(spec, list(k.rdms["stimulus"].values), targets)
        if spec.startswith("cichy2014:"):
            meg = cichy2014_meg(spec.split(":", 1)[1] or None, bin_ms=MEG_BIN_MS).mean("session")
            meg = meg.transpose("subject", "time", "stimulus", "stimulus_")
            n_subj = meg.sizes["subject"]
            return Source(spec, list(meg["stimulus"].values),
                          [Target("meg", meg, None, f"human MEG decoding RDMs, {n_subj} subjects, "
                                                    f"{MEG_BIN_MS:g} ms bins (Cichy et al. 2014)")])
        rec = load_recording(spec)
    if isinstance(rec, xr.DataArray) and "time" not in rec.dims and {"stimulus", "neuroid"} <= set(rec.dims):
        rec = rec.expand_dims(time=[np.nan])                # a static recording without a time dim
    rec = check_recording(rec, spec)
    return Source(spec, [str(s) for s in rec["stimulus"].values], None, rec, rdm_method)


def source_subset(source: Source, index) -> Source:
    """The source restricted to the stimuli at ``index`` (for fitting the mapping)."""
    rec = source.recording.isel(stimulus=np.asarray(index)) if source.recording is not None else None
    return Source(source.spec, [source.ids[j] for j in index], source.targets, rec, source.rdm_method)
