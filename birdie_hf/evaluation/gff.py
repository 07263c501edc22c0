"""Read protein-coding gene calls (CDS rows) from a GFF3 file, such as Prodigal's `-f gff` output.

Only what the task builders need is kept: sequence id, 0-based half-open coordinates, strand and whether the gene
runs off a sequence edge (Prodigal's `partial` attribute). Gene calls are predictions, not curated annotations.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from typing import Iterator, Union


PathLike = Union[str, os.PathLike]


class GFFFormatError(ValueError):
    """A GFF line that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class GeneCall:
    """One CDS. `start`/`end` are 0-based, half-open (`sequence[start:end]` is the gene on the + strand; for a
    `-` strand gene its reverse complement is the coding sequence). `partial` is True when the gene runs off an edge
    of its sequence (Prodigal `partial` other than `00`), so its start or stop codon is missing."""

    seqid: str
    start: int
    end: int
    strand: int  # +1 or -1
    partial: bool

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def start_codon(self) -> int:
        """0-based position of the first base of the start codon, on the + strand's coordinates."""
        return self.start if self.strand == 1 else self.end - 3

    @property
    def stop_codon(self) -> int:
        """0-based position of the first (+ strand) base of the stop codon."""
        return self.end - 3 if self.strand == 1 else self.start


def _open_text(path: str):
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")


def iter_gene_calls(path: PathLike) -> Iterator[GeneCall]:
    """Yield the `CDS` rows of a GFF3 file (plain or gzipped), in file order.

    Raises:
        `FileNotFoundError`: `path` does not exist.
        `GFFFormatError`: a row has fewer than 9 tab-separated columns, non-integer or inverted coordinates, or a
            strand other than `+`/`-` (the message names the file and line).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GFF file not found: {path!r}.")
    with _open_text(path) as handle:
        for line_number, line in enumerate(handle, 1):
            if line.startswith("##FASTA"):
                return
            if not line.strip() or line.startswith("#"):
                continue
            columns = line.rstrip("\n").split("\t")
            if len(columns) < 9:
                raise GFFFormatError(
                    f"{path}:{line_number}: expected 9 tab-separated GFF columns, got {len(columns)}: {line[:80]!r}."
                )
            if columns[2] != "CDS":
                continue
            try:
                start, end = int(columns[3]) - 1, int(columns[4])
            except ValueError:
                raise GFFFormatError(
                    f"{path}:{line_number}: start/end {columns[3]!r}/{columns[4]!r} are not integers."
                ) from None
            if start < 0 or end <= start:
                raise GFFFormatError(f"{path}:{line_number}: invalid coordinates {columns[3]}..{columns[4]}.")
            if columns[6] not in ("+", "-"):
                raise GFFFormatError(f"{path}:{line_number}: strand must be '+' or '-', got {columns[6]!r}.")
            attributes = dict(item.split("=", 1) for item in columns[8].strip().strip(";").split(";") if "=" in item)
            yield GeneCall(
                seqid=columns[0],
                start=start,
                end=end,
                strand=1 if columns[6] == "+" else -1,
                partial=attributes.get("partial", "00") != "00",
            )
