"""A machine that dies while a job writes its output.

With ``HFML_KILL_AFTER_WRITES=N`` in the environment, the Python process that
writes its N-th parquet row group sends SIGKILL to its whole process group,
Snakemake included, right after that write: a job interrupted half-way
through its output, with no chance to clean up.  Put this folder first on
``PYTHONPATH`` to arm it.
"""

import os
import signal

if os.environ.get("HFML_KILL_AFTER_WRITES"):
    import pyarrow.parquet

    _limit = int(os.environ["HFML_KILL_AFTER_WRITES"])
    _written = 0
    _write_table = pyarrow.parquet.ParquetWriter.write_table

    def _write_then_die(self, *args, **kwargs):
        global _written
        _write_table(self, *args, **kwargs)
        _written += 1
        if _written >= _limit:
            os.killpg(os.getpgrp(), signal.SIGKILL)

    pyarrow.parquet.ParquetWriter.write_table = _write_then_die
