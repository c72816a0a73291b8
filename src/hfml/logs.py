"""Logging of workflow jobs: one log file per job, with counts a physicist can read."""

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from hfml.errors import HfmlError

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@contextlib.contextmanager
def job_logging(path: str | os.PathLike) -> Iterator[logging.Logger]:
    """Send logging and uncaught errors of a job to ``path``.

    An :class:`HfmlError` is logged as a one-line message (it already says what
    is wrong and where); any other error with its traceback.  Either is raised
    again, so the job fails.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(FORMAT))
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.ERROR)
        logging.basicConfig(level=logging.INFO, handlers=[handler, console], force=True)
        logger = logging.getLogger("hfml")
        try:
            yield logger
        except HfmlError as err:
            logger.error("%s", err)
            raise
        except Exception:
            logger.exception("job failed")
            raise
        finally:
            logging.getLogger().removeHandler(handler)
            logging.getLogger().removeHandler(console)
