"""A small GenBank reader (sequence + feature locations), enough to derive labelled tasks from annotations."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from typing import Iterator

from ..data import GenomeDataError


@dataclass
class Feature:
    """One annotated feature.

    Attributes:
        type (`str`): e.g. `"CDS"`, `"gene"`, `"tRNA"`.
        start (`int`): 0-based start (inclusive) on the + strand.
        end (`int`): 0-based end (exclusive).
        strand (`int`): `+1` or `-1`.
        qualifiers (`dict[str, str]`): first value of each `/key=value` qualifier.
        partial (`bool`): the location had `<` or `>` (extends past the known sequence).
    """

    type: str
    start: int
    end: int
    strand: int
    qualifiers: dict = field(default_factory=dict)
    partial: bool = False


@dataclass
class GenBankRecord:
    name: str
    sequence: str
    features: list = field(default_factory=list)


_SIMPLE_LOCATION = re.compile(r"^(complement\()?([<>]?)(\d+)\.\.([<>]?)(\d+)\)?$")


def _parse_location(text: str, path: str, record: str):
    match = _SIMPLE_LOCATION.match(text.replace(" ", ""))
    if match is None:
        return None  # joins, orders and single bases are skipped: derived tasks only use simple spans
    complement, open_start, start, open_end, end = match.groups()
    return int(start) - 1, int(end), -1 if complement else 1, bool(open_start or open_end)


def iter_genbank(path: str) -> Iterator[GenBankRecord]:
    """Yield the records of a GenBank (`.gbk`, optionally gzipped) file with their simple-span features.

    Features with compound locations (`join(...)`, `order(...)`) are skipped.

    Raises:
        [`GenomeDataError`]: the file is not GenBank (no `LOCUS` line) or a record has no `ORIGIN` sequence.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    if not any(line.startswith("LOCUS") for line in lines[:5]):
        raise GenomeDataError(f"{path!r} is not a GenBank file: no LOCUS line at the top.")
    i = 0
    while i < len(lines):
        if not lines[i].startswith("LOCUS"):
            i += 1
            continue
        name = lines[i].split()[1]
        features, sequence, current = [], [], None
        section = None
        i += 1
        while i < len(lines) and not lines[i].startswith("//"):
            line = lines[i]
            if line.startswith("FEATURES"):
                section = "features"
            elif line.startswith("ORIGIN"):
                section = "origin"
            elif section == "features" and len(line) > 21 and line[5] != " ":
                kind, location = line[5:21].strip(), line[21:].strip()
                parsed = _parse_location(location, path, name)
                current = None
                if parsed is not None:
                    start, end, strand, partial = parsed
                    current = Feature(kind, start, end, strand, partial=partial)
                    features.append(current)
            elif section == "features" and current is not None and line[21:].startswith("/"):
                key, _, value = line[22:].partition("=")
                current.qualifiers.setdefault(key, value.strip('"'))
            elif section == "origin":
                sequence.append("".join(line.split()[1:]))
            i += 1
        if not sequence:
            raise GenomeDataError(f"Record {name!r} in {path!r} has no ORIGIN sequence.")
        yield GenBankRecord(name=name, sequence="".join(sequence).upper(), features=features)
        i += 1
