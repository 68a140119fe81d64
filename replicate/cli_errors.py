"""Expected failures of the command-line tools (`replicate.errors`, bad input): a one-line
message on stderr, never a traceback.

Bad input is what the project itself rejects: a `ValueError` raised in `vit/`, `baselines/` or
`replicate/`. A `ValueError` raised inside a library (torch, PIL, json, ...) is a bug, or a
case the project should have checked, and shows its whole traceback, as does everything with
`REPLICATE_DEBUG=1` in the environment.

Bad input (an unknown dataset or variant, an empty or corrupt image folder, weights that cannot be
fetched offline, a missing, corrupt or wrong-kind checkpoint, a bad option) exits with status 2, as
argparse does for a bad option; a diverged run exits with 1. An interrupted one exits with the
shell's code for the signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, which `run_cli` turns into
the same `KeyboardInterrupt` so that both stop a run alike (its last checkpoint kept).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from replicate.errors import DivergedError
from vit.pretrained import WeightsUnavailableError


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop), raised where the program is, as Ctrl-C is."""


BAD_INPUT = (ValueError, WeightsUnavailableError, FileNotFoundError)


def run_cli(prog: str, main: Callable[[Sequence[str] | None], object], argv=None) -> int:
    """Run `main(argv)` and turn expected failures into an exit status with a one-line message."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        main(argv)
    except BAD_INPUT as error:
        if debugging() or not (isinstance(error, FileNotFoundError) or raised_here(error)):
            raise
        return _fail(prog, f"{error} ({DEBUG}=1 shows the traceback)", status=2)
    except DivergedError as error:
        return _fail(prog, error, status=1)
    except KeyboardInterrupt as error:
        signum = signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT
        return _fail(prog, str(error) or "interrupted", status=128 + signum)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return 0


PACKAGES = tuple(
    str(Path(__file__).resolve().parents[1] / p) for p in ("vit", "baselines", "replicate")
)
DEBUG = "REPLICATE_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG, "") not in ("", "0")


def raised_here(error: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is the project's own code."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and frame.tb_frame.f_code.co_filename.startswith(PACKAGES)


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated


def _fail(prog: str, error: Exception | str, status: int) -> int:
    print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
    return status


class ArgumentParser(argparse.ArgumentParser):
    """argparse without abbreviations (`--model` is not short for `--model-arg`), and with a
    usage error on one line, exit status 2, like every other bad input."""

    def __init__(self, **kwargs) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    return _at_least(int(text), 1)


def non_negative_int(text: str) -> int:
    return _at_least(int(text), 0)


def non_negative_float(text: str) -> float:
    return _at_least(float(text), 0)


MAX_LR = 10.0  # far above any recipe's peak (Table 3's largest is 0.03 at batch 512)


def learning_rate(text: str) -> float:
    value = non_negative_float(text)
    if not value <= MAX_LR:  # inf too
        raise argparse.ArgumentTypeError(f"must be at most {MAX_LR:g}, got {value}")
    return value


def finite_non_negative_float(text: str) -> float:
    value = non_negative_float(text)
    if value == float("inf"):
        raise argparse.ArgumentTypeError("must be finite, got inf")
    return value


def probability(text: str) -> float:
    """A rate in [0, 1): dropout's (1 would drop everything)."""
    value = non_negative_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be below 1, got {value}")
    return value


def _at_least(value, low):
    if not value >= low:  # NaN too
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value
