"""`BirdieTrainer`: a `Trainer` that trains on Birdie's objective mixture and reports losses per objective."""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel, Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .callback import BirdieRewardCallback
from .collator import DataCollatorForBirdie
from .config import BirdieTrainingArguments
from .objectives import IGNORE_INDEX
from .packing import to_model_inputs
from .policy import BirdiePolicy


logger = logging.getLogger(__name__)

#: File holding the policy, mixture and trajectory in each checkpoint; written last, so its presence marks a
#: complete checkpoint.
BIRDIE_STATE_NAME = "birdie_state.pt"
TRAJECTORY_NAME = "mixture_trajectory.json"


class BirdieTrainer(Trainer):
    """Trainer for Birdie pre-training of causal language models.

    Use it like [`~transformers.Trainer`]: it builds a [`DataCollatorForBirdie`] from the arguments when none is
    given, adds a [`BirdieRewardCallback`] that lets the reward policy steer the mixture, logs the training loss of
    every objective entry (`loss/<entry>`) and the active mixture (`mixture/<entry>`), and saves the policy with each
    checkpoint so `resume_from_checkpoint` continues exactly.

    Args:
        model (`PreTrainedModel` or `str`, *optional*):
            A causal LM that accepts 4-D additive attention masks and `position_ids` (any native transformers
            decoder with `sdpa` or `eager` attention), or a checkpoint name for `AutoModelForCausalLM`. Defaults to
            the small Llama of [`default_model_config`].
        args ([`BirdieTrainingArguments`], *optional*).
        data_collator ([`DataCollatorForBirdie`], *optional*): built from `args` and `processing_class` if absent.
        train_dataset, eval_dataset (`datasets.Dataset`): windows with an `input_ids` column (see
            [`load_genome_windows`]). With `policy="birdie"`, `eval_dataset` is required: its first windows are the
            fixed held-out set of the reward.
        processing_class: the DNA tokenizer.

    Example:

    ```python
    >>> from birdie_hf import BirdieTrainer, BirdieTrainingArguments, build_dna_tokenizer, load_genome_windows
    >>> tokenizer = build_dna_tokenizer()
    >>> data = load_genome_windows(None, tokenizer, window_length=512)
    >>> args = BirdieTrainingArguments(output_dir="birdie-dna", max_steps=200, use_cpu=True)
    >>> trainer = BirdieTrainer(args=args, train_dataset=data["train"], eval_dataset=data["validation"],
    ...                         processing_class=tokenizer)
    >>> trainer.train()  # doctest: +SKIP
    ```
    """

    _tag_names = ["birdie_hf", "birdie", "dna", "genomics"]

    def __init__(
        self,
        model: Union[PreTrainedModel, nn.Module, str, None] = None,
        args: Optional[BirdieTrainingArguments] = None,
        data_collator: Optional[DataCollatorForBirdie] = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        callbacks: Optional[list] = None,
        **kwargs,
    ):
        if args is None:
            args = BirdieTrainingArguments(output_dir="birdie-output")
        elif not isinstance(args, BirdieTrainingArguments):
            raise TypeError(f"`args` must be BirdieTrainingArguments, got {type(args).__name__}.")
        if data_collator is None:
            if processing_class is None:
                raise ValueError("BirdieTrainer needs `processing_class` (the DNA tokenizer) or a `data_collator`.")
            data_collator = DataCollatorForBirdie.from_training_args(processing_class, args)
        elif not isinstance(data_collator, DataCollatorForBirdie):
            raise TypeError(f"`data_collator` must be a DataCollatorForBirdie, got {type(data_collator).__name__}.")
        if args.policy == "birdie" and eval_dataset is None:
            raise ValueError(
                "policy='birdie' needs an `eval_dataset` of held-out windows to measure the reward; pass one "
                "(e.g. load_genome_windows(...)['validation']) or use policy='static'."
            )
        if train_dataset is not None and hasattr(train_dataset, "__getitem__") and len(train_dataset) > 0:
            data_collator.validate_window_length(len(train_dataset[0]["input_ids"]))
        if model is None:
            from .modeling import build_causal_lm, default_model_config

            model = build_causal_lm(default_model_config(data_collator.tokenizer, max_position_embeddings=max(
                2048, args.max_length)), seed=args.seed)
        elif isinstance(model, str):
            model = AutoModelForCausalLM.from_pretrained(model, attn_implementation="sdpa")

        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        if embeddings is not None and embeddings.num_embeddings < len(data_collator.tokenizer):
            raise ValueError(
                f"The model has {embeddings.num_embeddings} token embeddings but the tokenizer has "
                f"{len(data_collator.tokenizer)} tokens (Birdie prompts and sentinels included): call "
                "`model.resize_token_embeddings(len(tokenizer))` first."
            )
        policy = None
        if args.policy == "birdie":
            policy = BirdiePolicy(data_collator.objective_names, data_collator.reward_classes,
                                  data_collator.mixture.weights, args.policy_config())
        self.birdie_callback = BirdieRewardCallback(data_collator.mixture, policy,
                                                    schedule_evaluations=eval_dataset is not None)
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=[self.birdie_callback] + list(callbacks or []),
            **kwargs,
        )
        self._mask_format = self._resolve_mask_format()
        # The loss is computed here, normalised by `num_items_in_batch`, for any model.
        self.model_accepts_loss_kwargs = True
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)
        config = getattr(self.model, "config", None)
        if config is not None:
            # Recorded in config.json so downstream code knows how the checkpoint was trained: `attention="auto"`
            # in fine-tuning reads prefix-trained checkpoints bidirectionally (see birdie_hf.finetune).
            trained = list(getattr(config, "birdie_objectives", None) or [])
            config.birdie_objectives = trained + [o for o in dict.fromkeys(data_collator.reward_classes)
                                                  if o not in trained]
        num_entries = len(data_collator.objective_names)
        self._objective_sums = torch.zeros(num_entries, dtype=torch.float64)
        self._objective_counts = torch.zeros(num_entries, dtype=torch.float64)
        self._validation_batches: Optional[list[dict[str, torch.Tensor]]] = None
        self._last_logged_mixture: Optional[dict[str, float]] = None
        self._in_training_loop = False
        self._model_tokens = 0

    # -- loss ------------------------------------------------------------------------------------------------------
    def _resolve_mask_format(self) -> str:
        attn = getattr(getattr(self.model, "config", None), "_attn_implementation", None)
        requested = self.args.attention_mask_format
        if requested == "flex" and attn != "flex_attention":
            raise ValueError(
                f"attention_mask_format='flex' needs a model built with attn_implementation='flex_attention' "
                f"(this one uses {attn!r}); use 'dense' or 'auto'."
            )
        if requested == "auto":
            return "flex" if attn == "flex_attention" and self.args.device.type == "cuda" else "dense"
        return requested

    def _mask_dtype(self, model: nn.Module) -> torch.dtype:
        if self.args.bf16:
            return torch.bfloat16
        if self.args.fp16:
            return torch.float16
        try:
            return next(model.parameters()).dtype
        except StopIteration:
            return torch.float32

    def _token_losses(self, model: nn.Module, inputs: dict[str, torch.Tensor]):
        """Forward pass; returns `(per-token loss (rows, length - 1), valid mask, objective id per token, outputs)`."""
        inputs = dict(inputs)
        objective_ids = inputs.pop("objective_ids")
        labels = inputs.pop("labels")
        outputs = model(**to_model_inputs(inputs, self._mask_dtype(model), self._mask_format), use_cache=False)
        logits = outputs.logits[:, :-1].float()
        targets = labels[:, 1:]
        losses = nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none",
                                             ignore_index=IGNORE_INDEX)
        return losses, targets != IGNORE_INDEX, objective_ids[:, 1:], outputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        losses, valid, objective_ids, outputs = self._token_losses(model, inputs)
        total = losses.sum()
        if num_items_in_batch is not None:
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
        else:
            loss = total / valid.sum().clamp(min=1)
        if model.training:
            with torch.no_grad():
                self._model_tokens = self._model_tokens + int((inputs["objective_ids"] >= 0).sum())
                ids = objective_ids[valid]
                self._objective_sums = self._objective_sums.to(losses.device)
                self._objective_counts = self._objective_counts.to(losses.device)
                self._objective_sums.index_add_(0, ids, losses[valid].double())
                self._objective_counts.index_add_(0, ids, torch.ones_like(ids, dtype=torch.float64))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        training = not any(key.startswith("eval_") for key in logs)
        if training and ("loss" in logs or "train_runtime" in logs):
            # Tokens through the model (context + targets, padding excluded), all ranks: the compute budget.
            tokens = self.accelerator.reduce(torch.tensor(self._model_tokens, device=self.args.device),
                                             reduction="sum")
            self.state.num_input_tokens_seen += int(tokens)
            self._model_tokens = 0
            logs["num_input_tokens_seen"] = self.state.num_input_tokens_seen
        if training and "loss" in logs:
            sums = self.accelerator.reduce(self._objective_sums.to(self.args.device), reduction="sum")
            counts = self.accelerator.reduce(self._objective_counts.to(self.args.device), reduction="sum")
            for name, total, count in zip(self.data_collator.objective_names, sums.tolist(), counts.tolist()):
                if count > 0:
                    logs[f"loss/{name}"] = total / count
            self._objective_sums.zero_()
            self._objective_counts.zero_()
            mixture = self.data_collator.mixture.as_dict()
            if mixture != self._last_logged_mixture:  # log the active mixture when it changes, not every time
                for name, weight in mixture.items():
                    logs[f"mixture/{name}"] = round(weight, 4)
                self._last_logged_mixture = mixture
        super().log(logs, start_time)

    # -- per-objective validation ------------------------------------------------------------------------------------
    def _build_validation_batches(self, eval_dataset) -> list[dict[str, torch.Tensor]]:
        """Fixed held-out batches, sized per entry by loss-bearing tokens.

        Windows are taken in a seeded order spread over `eval_dataset` (the same for every entry); each entry gets
        batches of `per_device_eval_batch_size` windows until they hold `policy_validation_tokens` target tokens and
        at least `policy_validation_min_windows` windows (at most `policy_validation_max_windows`; exactly
        `policy_validation_windows` when that is set). An entry with few targets per window (selective copying) thus
        gets more windows than next-token prediction; the minimum covers entries whose loss varies mostly between
        windows (deshuffling), which a token count alone under-samples.
        """
        collator: DataCollatorForBirdie = self.data_collator
        if len(eval_dataset) == 0:
            raise ValueError("The eval_dataset is empty: the reward policy needs held-out windows.")
        order = np.random.default_rng(self.args.seed).permutation(len(eval_dataset))
        size = max(1, self.args.per_device_eval_batch_size)
        fixed_windows = self.args.policy_validation_windows
        max_windows = fixed_windows or self.args.policy_validation_max_windows
        min_windows = fixed_windows or min(self.args.policy_validation_min_windows, max_windows)
        batches = []
        for entry in range(len(collator.objective_names)):
            used = tokens = 0
            while used < max_windows and (used < min_windows or tokens < self.args.policy_validation_tokens):
                count = min(size, max_windows - used)
                windows = [eval_dataset[int(order[(used + i) % len(order)])] for i in range(count)]
                batch = collator.collate_with_objectives(windows, [entry] * count)
                tokens += int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
                used += count
                batches.append(batch)
        return batches

    @torch.no_grad()
    def objective_losses(self, eval_dataset=None) -> np.ndarray:
        """Mean validation loss per mixture entry on the fixed held-out batches, shape `(num_entries,)`.

        Batches are split over ranks and the sums reduced, so every rank gets the same values.
        """
        if eval_dataset is not None:
            batches = self._build_validation_batches(eval_dataset)
        else:
            if self._validation_batches is None:
                if self.eval_dataset is None:
                    raise ValueError("No eval_dataset: pass one to BirdieTrainer or to evaluate().")
                self._validation_batches = self._build_validation_batches(self.eval_dataset)
            batches = self._validation_batches
        num_entries = len(self.data_collator.objective_names)
        sums = torch.zeros(num_entries, dtype=torch.float64, device=self.args.device)
        counts = torch.zeros_like(sums)
        # FSDP and DeepSpeed shard the parameters: run the wrapped engine, and give every rank the same number of
        # forward passes (padding with a repeated batch whose losses are not counted), or collectives would hang.
        model = self.model_wrapped if (self.is_fsdp_enabled or self.is_deepspeed_enabled) else self.model
        was_training = model.training
        model.eval()
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        passes = range(-(-len(batches) // world))
        if self.is_world_process_zero() and not self.args.disable_tqdm:
            from tqdm.auto import tqdm

            passes = tqdm(passes, desc="Birdie validation", leave=False)
        for i in passes:
            index = rank + i * world
            batch = self._prepare_inputs(batches[index if index < len(batches) else 0])
            with self.compute_loss_context_manager():
                losses, valid, objective_ids, _ = self._token_losses(model, batch)
            if index >= len(batches):
                continue
            ids = objective_ids[valid]
            sums.index_add_(0, ids, losses[valid].double())
            counts.index_add_(0, ids, torch.ones_like(ids, dtype=torch.float64))
        model.train(was_training)
        sums = self.accelerator.reduce(sums, reduction="sum")
        counts = self.accelerator.reduce(counts, reduction="sum")
        return (sums / counts.clamp(min=1)).cpu().numpy()

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Per-objective validation losses: metrics `{prefix}_loss` (mean over entries) and `{prefix}_loss/<entry>`.

        Without `eval_dataset` the losses come from the fixed held-out batches (see [`objective_losses`]). Only the
        policy's own scheduled evaluations (requested by [`BirdieRewardCallback`] during training) feed the reward
        policy; their decision is logged separately (`next_mixture/*`, `reward/*`, `policy/*`). Any other call,
        e.g. from `eval_strategy` or with other data, only measures.
        """
        import time

        start = time.time()
        losses = self.objective_losses(eval_dataset)
        metrics = {f"{metric_key_prefix}_loss": float(losses.mean())}
        for name, value in zip(self.data_collator.objective_names, losses.tolist()):
            metrics[f"{metric_key_prefix}_loss/{name}"] = value
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 4)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        self.log(metrics)
        if eval_dataset is None and self._in_training_loop and self.birdie_callback.is_due(self.state.global_step):
            self.log(self.birdie_callback.observe(self.args, self.state, losses))
        return metrics

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        checkpoint = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            self.save_birdie_state(checkpoint)
        self.accelerator.wait_for_everyone()

    def save_birdie_state(self, directory: str) -> None:
        """Write the policy state (atomically) and the mixture trajectory (JSON) into `directory`."""
        os.makedirs(directory, exist_ok=True)
        _atomic_write(os.path.join(directory, TRAJECTORY_NAME),
                      lambda path: _write_json(path, self.mixture_trajectory()))
        _atomic_write(os.path.join(directory, BIRDIE_STATE_NAME),
                      lambda path: torch.save(self.birdie_callback.state_dict(), path))

    def mixture_trajectory(self) -> dict[str, Any]:
        """The run's evaluations: step, per-entry losses, mixture in force, rewards and the next mixture."""
        return {
            "policy": self.args.policy,
            "entries": self.data_collator.objective_names,
            "reward_classes": self.data_collator.reward_classes,
            "evaluations": self.birdie_callback.trajectory,
        }

    def widget_sequences(self, count: int = 2, length: int = 64) -> list[str]:
        """Real DNA strings (the first held-out windows, decoded) for model-card widgets."""
        dataset = self.eval_dataset if self.eval_dataset is not None else self.train_dataset
        tokenizer = self.data_collator.tokenizer
        sequences = []
        for i in range(min(count, len(dataset))):
            sequences.append(tokenizer.decode(dataset[i]["input_ids"][:length], skip_special_tokens=True))
        return sequences

    def create_model_card(self, model_name: Optional[str] = None, evaluation: Optional[list[dict]] = None,
                          training_data: Optional[str] = None, tokens_seen: Optional[int] = None, **kwargs) -> None:
        """Write the Birdie model card (mixture trajectory, training settings, widget examples, and downstream
        results when given) to `output_dir/README.md`; `push_to_hub` uploads it."""
        from .hub import pretrained_model_card

        if not self.is_world_process_zero():
            return
        repo_id = self.args.hub_model_id or model_name or os.path.basename(self.args.output_dir.rstrip("/"))
        config = self.model.config
        training = {
            "steps": self.state.global_step,
            "tokens_seen": f"{tokens_seen:,}" if tokens_seen else "n/a",
            "window_length": len(self.train_dataset[0]["input_ids"]) if self.train_dataset is not None else "n/a",
            "max_length": self.args.max_length,
            "model_size": f"{type(self.model).__name__}, hidden {getattr(config, 'hidden_size', '?')}, "
                          f"{getattr(config, 'num_hidden_layers', '?')} layers, "
                          f"{sum(p.numel() for p in self.model.parameters()) / 1e6:.2f}M parameters",
            "training_data": training_data or "DNA windows (see training arguments)",
        }
        card = pretrained_model_card(repo_id, self.mixture_trajectory(), training,
                                     widget_sequences=self.widget_sequences(), evaluation=evaluation)
        card.save(os.path.join(self.args.output_dir, "README.md"))

    def train(self, resume_from_checkpoint: Union[str, bool, None] = None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No complete checkpoint (with {BIRDIE_STATE_NAME}) found in {self.args.output_dir}.")
        if resume_from_checkpoint:
            state_path = os.path.join(resume_from_checkpoint, BIRDIE_STATE_NAME)
            if not os.path.exists(state_path):
                raise ValueError(
                    f"{resume_from_checkpoint!r} has no {BIRDIE_STATE_NAME}: it is incomplete or not a BirdieTrainer "
                    "checkpoint."
                )
            self.birdie_callback.load_state_dict(torch.load(state_path, weights_only=False))
        self._in_training_loop = True
        try:
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            self._in_training_loop = False


def last_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The highest-step `checkpoint-N` folder of `output_dir` that holds a Birdie state file (so was fully
    written); incomplete ones (a run killed while saving) are skipped with a warning."""
    if not os.path.isdir(output_dir):
        return None
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    found = sorted(((int(m.group(1)), name) for name in os.listdir(output_dir) if (m := pattern.match(name))),
                   reverse=True)
    for _, name in found:
        path = os.path.join(output_dir, name)
        if os.path.exists(os.path.join(path, BIRDIE_STATE_NAME)):
            return path
        logger.warning("Skipping incomplete checkpoint %s (no %s).", path, BIRDIE_STATE_NAME)
    return None


def _write_json(path: str, payload: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)


def _atomic_write(path: str, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see a partial file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    write(tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
