"""Recorded neural data as ``response (stimulus, [repetition,] time, neuroid)``.

- :mod:`~vision_rnn.recordings.layout`: the layout and its check;
- :mod:`~vision_rnn.recordings.netcdf`: our recording file (:func:`save_recording`,
  :func:`load_recording`, which also reads BrainIO files);
- :mod:`~vision_rnn.recordings.brainio`: BrainIO / Brain-Score assemblies in and out;
- :mod:`~vision_rnn.recordings.sets`: the published 92-image sets (IT RDMs, Cichy 2014 MEG);
- :mod:`~vision_rnn.recordings.simulate`: synthetic recordings with a planted time mapping.

>>> from vision_rnn.recordings import load_recording, kriegeskorte92    # doctest: +SKIP
>>> k = kriegeskorte92()                                                # doctest: +SKIP
"""

from .brainio import from_assembly, layer_assembly, save_brainio, to_brainio
from .layout import check_recording
from .netcdf import load_recording, save_recording
from .sets import NinetyTwo, cichy2014_meg, kriegeskorte92
from .simulate import simulate_recording

__all__ = ["NinetyTwo", "check_recording", "cichy2014_meg", "from_assembly", "kriegeskorte92", "layer_assembly",
           "load_recording", "save_brainio", "save_recording", "simulate_recording", "to_brainio"]
