"""Launched by tests/test_distributed.py with two processes: records the mixture every rank trains on."""

import json
import os
import sys
import time

import torch.distributed as dist
from transformers import TrainerCallback

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    build_causal_lm,
    build_dna_tokenizer,
    default_model_config,
    load_genome_windows,
)


class RecordMixture(TrainerCallback):
    def __init__(self, mixture, path):
        self.mixture, self.path, self.records = mixture, path, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.records.append({"step": state.global_step, "mixture": self.mixture.weights.tolist()})

    def on_train_end(self, args, state, control, **kwargs):
        with open(self.path, "w") as handle:
            json.dump(
                {"world_size": dist.get_world_size() if dist.is_initialized() else 1, "records": self.records}, handle
            )


class SlowSteps(TrainerCallback):
    """Gives a test time to kill the run between checkpoints (BIRDIE_PROBE_STEP_SLEEP seconds per step)."""

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(float(os.environ.get("BIRDIE_PROBE_STEP_SLEEP", "0")))


def main(output_dir: str, stop_at: int, resume: bool):
    tokenizer = build_dna_tokenizer()
    data = load_genome_windows(None, tokenizer, window_length=64)
    args = BirdieTrainingArguments(
        output_dir=output_dir,
        max_steps=int(os.environ.get("BIRDIE_PROBE_MAX_STEPS", "8")),
        per_device_train_batch_size=2,
        per_device_eval_batch_size=8,
        max_length=160,
        objectives=[
            "next_token_prediction",
            "prefix_lm",
            "copying",
            {"objective": "infilling", "mean_span_length": 3},
        ],
        policy_eval_interval=2,
        policy_warmup_steps=2,
        policy_validation_windows=2,
        policy_hidden_size=16,
        policy_num_layers=1,
        policy_update_iterations=10,
        policy_num_candidates=64,
        save_strategy="steps",
        save_steps=int(os.environ.get("BIRDIE_PROBE_SAVE_STEPS", "4")),
        logging_steps=2,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2), seed=0
    )
    trainer = BirdieTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
    )
    rank = dist.get_rank() if dist.is_initialized() else 0
    print(
        f"rank {rank}: accelerator process_index={trainer.accelerator.process_index}, world={trainer.accelerator.num_processes}",
        flush=True,
    )
    tag = "resumed" if resume else "first"
    trainer.add_callback(SlowSteps())
    trainer.add_callback(
        RecordMixture(trainer.data_collator.mixture, os.path.join(output_dir, f"mixture_{tag}_rank{rank}.json"))
    )
    if stop_at:

        class Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == stop_at:
                    control.should_training_stop = True

        trainer.add_callback(Stop())
    trainer.train(resume_from_checkpoint=True if resume else None)
    if trainer.is_world_process_zero():
        with open(os.path.join(output_dir, f"trajectory_{tag}.json"), "w") as handle:
            json.dump(trainer.mixture_trajectory(), handle)


if __name__ == "__main__":
    from birdie_hf.cli import end_distributed

    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "resume")
    end_distributed()
