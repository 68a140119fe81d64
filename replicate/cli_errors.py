"""Expected failures of the command-line tools (`replicate.errors`, bad input): a one-line
message on stderr, never a traceback.

Bad input (an unknown dataset or variant, an empty or corrupt image folder, weights that cannot be
fetched offline, a checkpoint of another model) exits with status 2, as argparse does for a bad
option; a diverged run exits with 1 and an interrupted one with 130, the shell's code for Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from replicate.errors import DivergedError
from vit.pretrained import WeightsUnavailableError

BAD_INPUT = (ValueError, WeightsUnavailableError, FileNotFoundError)


def run_cli(prog: str, main: Callable[[Sequence[str] | None], object], argv=None) -> int:
    """Run `main(argv)` and turn expected failures into an exit status with a one-line message."""
    try:
        main(argv)
    except BAD_INPUT as error:
        return _fail(prog, error, status=2)
    except DivergedError as error:
        return _fail(prog, error, status=1)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", status=130)
    return 0


def _fail(prog: str, error: Exception | str, status: int) -> int:
    message = " ".join(str(error).split())  # one line, even for multi-line library messages
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status
