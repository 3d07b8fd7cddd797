"""The spill files of a scan's transfers (partition.py): Arrow IPC, written part (partition) by part.

Each part is one file kept open while a pass appends a record batch to it per slice, so a pass writes as
many files as it has parts, not parts x slices (a 200M-row scan once made 73k spill files of a few hundred
kB, and every query Polars runs over them holds memory per file). Where the process may not hold a file open
per part (its open-file limit, raised towards what it needs when the hard limit allows), each slice's batch
is a file of its own: more files, the same rows.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from followmoney.errors import ResourceError

_ZSTD = pa.Codec("zstd", compression_level=1)
# Files a scan keeps free for everything else while its writers are open (inputs, Polars, outputs).
_SPARE_FILES = 256


def open_file_room(wanted: int) -> int:
    """How many files this process may hold open, raising its soft limit towards `wanted` (up to the hard
    limit) when it is lower; 1024 where the limit cannot be read."""
    try:
        import resource  # POSIX only

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        return wanted if soft == resource.RLIM_INFINITY else soft
    except (ImportError, ValueError, OSError):
        return 1024


def _write_error(directory: Path, exc: OSError) -> ResourceError:
    """The one-line error for a temporary file that could not be written (a full disk, mostly)."""
    return ResourceError(
        f"{directory}: could not write spill files ({' '.join(str(exc).split())[:150]}); free space there "
        "or pass --spill-dir on a larger disk"
    )


class SpillWriters:
    """Arrow IPC files in `directory`, one per part (`files[part]`: its files in the order written). A part
    starts a new file when a batch's columns differ from its open file's (inputs with other columns): an
    Arrow file holds one schema. Uncompressed or zstd level 1 as `compression` says, text as plain (large)
    strings. Used from one thread at a time.

    Written by pyarrow, which compresses buffers on threads and without the GIL: one 1M-row slice's 2.7M
    copies (10M world, 25 partitions) took 0.8 s to write against 1.3 s for Polars' lz4 writer, in 167 MB
    against 235 MB, and read back as fast. Uncompressed is faster still, in about 3.5 times the bytes
    (partition.spill_codec chooses)."""

    def __init__(self, directory: Path, n_parts: int, compression: str) -> None:
        self.directory = directory
        self.files: list[list[Path]] = [[] for _ in range(n_parts)]
        self.options = ipc.IpcWriteOptions(compression=_ZSTD if compression == "zstd" else None)
        self.keep_open = open_file_room(n_parts + _SPARE_FILES) >= n_parts + _SPARE_FILES
        self.open: dict[int, tuple[ipc.RecordBatchFileWriter, pa.Schema]] = {}
        self.count = 0

    def append(self, part: int, table: pa.Table) -> None:
        """Write `table` at the end of the part's current file."""
        current = self.open.get(part)
        if current is not None and not current[1].equals(table.schema, check_metadata=True):
            self._close(part)
            current = None
        try:
            if current is None:
                path = self.directory / f"p{part:05d}-f{self.count:06d}.arrow"
                self.count += 1
                current = (ipc.new_file(path, table.schema, options=self.options), table.schema)
                self.open[part] = current
                self.files[part].append(path)
            current[0].write_table(table)
        except OSError as exc:
            raise _write_error(self.directory, exc) from None

    def end_slice(self) -> None:
        """A slice is written: its files are closed unless the process may keep one open per part."""
        if not self.keep_open:
            self.close()

    def _close(self, part: int) -> None:
        try:
            self.open.pop(part)[0].close()
        except OSError as exc:
            raise _write_error(self.directory, exc) from None

    def close(self) -> None:
        """Finish every open file (its Arrow footer); the files are readable after this."""
        for part in list(self.open):
            self._close(part)

    def abandon(self) -> None:
        """Let go of every open file without finishing it (the pass failed; its files are removed)."""
        for writer, _ in self.open.values():
            with contextlib.suppress(OSError):
                writer.close()
        self.open.clear()
