"""Running the `vrnn` command line in-process, as the tests do."""

from click.testing import CliRunner

from vision_rnn.cli import main


def run(*args):
    """`vrnn ARGS...` in this process (paths may be Path objects); exceptions that are bugs propagate."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def error_line(result) -> str:
    """The one line a user error prints on stderr (progress bar lines aside); fails if there are more."""
    lines = [l for l in result.stderr.strip().splitlines() if l.strip() and "%|" not in l]
    assert len(lines) == 1, result.stderr
    return lines[0]
