"""Errors raised for user mistakes.

Every message names the file, option or value at fault and says how to fix it.
The command line turns a :class:`VRNNError` into one line on stderr and exit
code 2; anything else is a bug and exits 1 with a traceback.
"""


class VRNNError(Exception):
    """A user error: bad path, bad file, bad option or bad value."""


class ModelError(VRNNError):
    """Unknown model name, bad weights file, unsupported configuration."""


class StimuliError(VRNNError):
    """A stimuli source that does not exist, is empty or holds unreadable images."""


class StoreError(VRNNError):
    """An activation file that is missing, foreign, incomplete or mismatched."""


class BadImages(StimuliError):
    """Images that only a full decode shows to be unreadable; ``found``: {index: reason}."""

    def __init__(self, message: str, found: dict | None = None):
        super().__init__(message)
        self.found = found or {}


class WriteFailed(StoreError):
    """The writer could not write a batch; ``fix``: what the user can do."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


class DataError(VRNNError):
    """Training data or recordings with the wrong layout."""


class AnalysisError(VRNNError):
    """Analysis inputs with the wrong dimensions, mismatched stimuli or nothing left to analyse."""


class RSAError(AnalysisError):
    """Bad input to an RSA function: missing dims, unknown method, too few stimuli."""


class TimeAxisError(AnalysisError):
    """Model steps and milliseconds mixed up, or a mapping that cannot be used."""


class EncodingError(AnalysisError):
    """Bad input to an encoding model: dims, too few stimuli, unknown options."""


class CompareError(VRNNError):
    """Inputs that cannot be compared: no shared stimuli, different RDM sizes, bad options."""


class VRNNWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. metadata rows that match no stimulus).

    The command line prints it as one line, ``vrnn: warning: ...``."""
