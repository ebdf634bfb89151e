"""Model against recording: RDM similarity of every layer at every step with every recording bin.

- :mod:`~vision_rnn.compare.targets`: a RECORDING argument -> targets (sets of RDMs);
- :mod:`~vision_rnn.compare.run`: :func:`run_comparison`, matching stimuli first and
  reading only the shared rows of each layer;
- :mod:`~vision_rnn.compare.result`: :class:`Comparison`, a labelled DataTree, and its tables;
- :mod:`~vision_rnn.compare.curves`: curves over steps and over ms read from the matrix;
- :mod:`~vision_rnn.compare.report`: the report folder; :mod:`~vision_rnn.compare.figures`: its figures.

>>> from vision_rnn.compare import run_comparison                         # doctest: +SKIP
>>> c = run_comparison("k92.nc", "kriegeskorte92:data/kriegeskorte2008")  # doctest: +SKIP
>>> c.write("k92_report/")                                                # doctest: +SKIP
"""

from ..errors import CompareError
from .curves import ms_curve, step_curve
from .report import check_out, write_report
from .result import Comparison
from .run import run_comparison

__all__ = ["CompareError", "Comparison", "check_out", "ms_curve", "run_comparison", "step_curve", "write_report"]
