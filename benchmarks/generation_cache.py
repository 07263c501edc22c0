"""What a checkpoint's `use_cache` costs `pipeline("text-generation")`: the same model generating the same bases with
the KV cache (what checkpoints now save) and without it (what transformers' Trainer wrote into every saved config
before: `config.use_cache = TrainingArguments.use_cache`, False).

Each row is a fresh `pipeline("text-generation")` on a checkpoint saved once with `use_cache` true and once false; the
ratio is measured in the same run. The default model is the recipe's (hidden 128, 4 layers).

    python benchmarks/generation_cache.py                      # 256 new bases, 3 repeats
    python benchmarks/generation_cache.py --new_tokens 64 --hidden_size 512 --num_hidden_layers 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import pipeline

from birdie_hf import build_causal_lm, build_dna_tokenizer, default_model_config


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--num_hidden_layers", type=int, default=4)
    parser.add_argument("--num_attention_heads", type=int, default=4)
    args = parser.parse_args(argv)

    tokenizer = build_dna_tokenizer()
    config = default_model_config(
        tokenizer,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads,
    )
    model = build_causal_lm(config, seed=0).eval()
    prompt = "ATGGCTAGCAAAAGCTAGGATCGATCGTACGATCG"
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        for use_cache in (True, False):
            model.config.use_cache = use_cache
            model.generation_config.use_cache = use_cache
            path = f"{folder}/cache-{use_cache}"
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)
            generator = pipeline("text-generation", model=path, device="cpu")
            kwargs = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
            generator(prompt, **kwargs)  # warm-up
            runs = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                with torch.inference_mode():
                    generator(prompt, **kwargs)
                runs.append(time.perf_counter() - start)
            seconds[use_cache] = statistics.median(runs)
    print(
        f"pipeline('text-generation'), {args.new_tokens} new bases, hidden {args.hidden_size} x "
        f"{args.num_hidden_layers} layers, CPU threads {torch.get_num_threads()}, median of {args.repeats}\n"
    )
    print("| saved config | seconds | vs use_cache true |")
    print("|---|---|---|")
    for use_cache in (True, False):
        print(
            f"| use_cache {str(use_cache).lower()} | {seconds[use_cache]:.2f} | {seconds[use_cache] / seconds[True]:.2f}x |"
        )


if __name__ == "__main__":
    main()
