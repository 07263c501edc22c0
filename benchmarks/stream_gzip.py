"""`stream_genome_windows` on gzipped FASTA against the same FASTA uncompressed, 5-100 Mbp: one linear pass?

Baseline: the uncompressed file, streamed with the same settings in the same run. A linear reader keeps the ratio
(gzip / plain) flat as the genome grows; the reader before 2026-12-04 rewound the gzip stream for every shard whose
windows overlapped the previous one (76 of 77 seeks went backwards), so its ratio grew with the size (1.8 s at 5 Mbp,
16.3 s at 20 Mbp, 107.6 s at 50 Mbp against 11.3 s uncompressed).

The genomes are random bases in records of `--record_mbp` (written once into `--work_dir`, gzip level 1), windows of
1,024 with stride 512 (overlapping, as the README's streaming example), 256 windows per shard.

    python benchmarks/stream_gzip.py                       # 5, 20, 50, 100 Mbp
    python benchmarks/stream_gzip.py --sizes_mbp 5 20
"""

from __future__ import annotations

import argparse
import gzip
import os
import time

import numpy as np

from birdie_hf import build_dna_tokenizer, stream_genome_windows


def write_genome(path: str, mbp: float, record_mbp: float, seed: int = 0) -> None:
    if os.path.exists(path):
        return
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGT", dtype=np.uint8)
    opener = gzip.open if path.endswith(".gz") else open
    total = int(mbp * 1e6)
    with opener(path + ".partial", "wb", **({"compresslevel": 1} if path.endswith(".gz") else {})) as handle:
        record = 0
        while total > 0:
            length = min(total, int(record_mbp * 1e6))
            bases = alphabet[rng.integers(0, 4, size=length)]
            handle.write(f">record_{record}\n".encode())
            for start in range(0, length, 80):
                handle.write(bases[start : start + 80].tobytes() + b"\n")
            total -= length
            record += 1
    os.replace(path + ".partial", path)


def stream_seconds(path: str, tokenizer, window_length: int, stride: int) -> tuple[float, int]:
    start = time.perf_counter()
    stream = stream_genome_windows(path, tokenizer, window_length=window_length, stride=stride)
    count = sum(1 for _ in stream)
    return time.perf_counter() - start, count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes_mbp", type=float, nargs="+", default=[5, 20, 50, 100])
    parser.add_argument("--record_mbp", type=float, default=5.0)
    parser.add_argument("--window_length", type=int, default=1024)
    parser.add_argument("--stride", type=int, default=512)
    parser.add_argument("--work_dir", default="/tmp/birdie_stream_bench")
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    tokenizer = build_dna_tokenizer()
    print(
        f"windows of {args.window_length}, stride {args.stride}, records of {args.record_mbp} Mbp; index + one full "
        "pass, seconds"
    )
    print(
        f"| {'genome':>8} | {'plain s':>8} | {'gzip s':>8} | {'gzip / plain':>12} | {'windows':>9} | {'s per Mbp (gzip)':>16} |"
    )
    print(f"|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 11}|{'-' * 18}|")
    for mbp in args.sizes_mbp:
        plain, packed = (os.path.join(args.work_dir, f"genome_{mbp:g}mbp.fa{ext}") for ext in ("", ".gz"))
        write_genome(plain, mbp, args.record_mbp)
        write_genome(packed, mbp, args.record_mbp)
        plain_s, count = stream_seconds(plain, tokenizer, args.window_length, args.stride)
        gzip_s, gzip_count = stream_seconds(packed, tokenizer, args.window_length, args.stride)
        assert count == gzip_count, (count, gzip_count)
        print(
            f"| {f'{mbp:g} Mbp':>8} | {plain_s:>8.1f} | {gzip_s:>8.1f} | {gzip_s / plain_s:>11.2f}x | {count:>9,} | "
            f"{gzip_s / mbp:>16.3f} |"
        )


if __name__ == "__main__":
    main()
