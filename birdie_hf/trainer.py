"""`BirdieTrainer`: a `Trainer` that trains on Birdie's objective mixture and reports losses per objective."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    PreTrainedModel,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer import (
    OPTIMIZER_NAME,
    SCHEDULER_NAME,
    TRAINER_STATE_NAME,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput

from ._compat import load_optimizer_on_cpu, reset_accelerate_loss_scaling
from .accounting import compute_accounting
from .callback import BirdieRewardCallback
from .collator import DataCollatorForBirdie
from .config import BirdieTrainingArguments, as_birdie_training_args
from .console import BirdiePrinterCallback, BirdieProgressCallback
from .data.training_checks import check_training_data
from .health import HealthReading, health_summary, health_warning, measure_health
from .heldout import build_validation_batches, first_examples, health_windows, validation_windows_per_entry
from .hub import pretrained_model_card, read_held_out_table, training_facts
from .modeling import build_causal_lm, default_model_config
from .objectives import IGNORE_INDEX
from .packing import to_model_inputs
from .runs.checkpoints import (
    checkpoint_to_resume,
    last_complete_checkpoint,
    read_birdie_state,
    remove_incomplete_checkpoints,
    save_birdie_state,
    write_checkpoint_checksums,
)
from .runs.folder import (
    open_run_folder,
    share_refusal,
)
from .runs.spec import birdie_run_spec, saved_run_differences
from .tokenizer import make_tokenizer_config_portable


logger = logging.getLogger(__name__)


class TrainingDivergedError(ValueError):
    """An objective's training loss became NaN or infinite; nothing after it is saved."""


class BirdieTrainer(Trainer):
    """Trainer for Birdie pre-training of causal language models.

    Use it like [`~transformers.Trainer`]: it builds a [`DataCollatorForBirdie`] from the arguments when none is
    given, adds a [`BirdieRewardCallback`] that lets the reward policy steer the mixture, logs the training loss of
    every objective entry (`loss/<entry>`) and the active mixture (`mixture/<entry>`), and saves the policy with each
    checkpoint so `resume_from_checkpoint` continues exactly.

    Every metric goes to `state.log_history`, the `report_to` integrations and other callbacks; the console gets
    short lines (`loss`, `grad_norm`, `learning_rate`, `epoch`), one line per policy evaluation and, at the end, a
    table of the last evaluation (loss, reward and weight -> next weight per entry), printed by
    [`BirdiePrinterCallback`] / [`BirdieProgressCallback`] in place of transformers' `PrinterCallback` /
    `ProgressCallback`.

    Args:
        model (`PreTrainedModel` or `str`, *optional*):
            A causal LM that accepts 4-D additive attention masks and `position_ids` (any native transformers
            decoder with `sdpa` or `eager` attention), or a checkpoint name for `AutoModelForCausalLM`. Defaults to
            the small Llama of [`default_model_config`].
        args ([`BirdieTrainingArguments`] or [`~transformers.TrainingArguments`], *optional*):
            Defaults to `BirdieTrainingArguments(output_dir="birdie-output")`. Plain `TrainingArguments` are converted
            to `BirdieTrainingArguments` with the Birdie fields at their defaults (see [`as_birdie_training_args`]).
        data_collator ([`DataCollatorForBirdie`], *optional*): built from `args` and `processing_class` if absent.
        train_dataset, eval_dataset (`datasets.Dataset`): windows with an `input_ids` column (see
            [`load_genome_windows`]; `train_dataset` may be a streaming `IterableDataset`). With `policy="birdie"`,
            `eval_dataset` is required: its first windows are the fixed held-out set of the reward. Either value of
            `remove_unused_columns` works: the columns the collator reads are kept (see
            `DataCollatorForBirdie.dataset_columns`), whatever the model's `forward` signature.
        processing_class: the DNA tokenizer; defaults to the collator's. It is saved with the model and every
            checkpoint, and gives transformers the pad id for `num_input_tokens_seen`.

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
        args: Optional[TrainingArguments] = None,
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
            args = as_birdie_training_args(args)
        if data_collator is None:
            if processing_class is None:
                raise ValueError("BirdieTrainer needs `processing_class` (the DNA tokenizer) or a `data_collator`.")
            data_collator = DataCollatorForBirdie.from_training_args(processing_class, args)
        elif not isinstance(data_collator, DataCollatorForBirdie):
            raise TypeError(f"`data_collator` must be a DataCollatorForBirdie, got {type(data_collator).__name__}.")
        if data_collator.mask_format == "dense" and args.include_num_input_tokens_seen == "non_padding":
            raise ValueError(
                "include_num_input_tokens_seen='non_padding' counts tokens from a 2-D `attention_mask`, but this "
                "collator sends the 4-D additive mask (mask_format='dense'), which would make the count meaningless. "
                "Use the default mask_format='segments' (BirdieTrainer builds the mask on the device), or set "
                "include_num_input_tokens_seen to 'all' or 'no'."
            )
        if args.policy == "birdie" and eval_dataset is None:
            raise ValueError(
                "policy='birdie' needs an `eval_dataset` of held-out windows to measure the reward; pass one "
                "(e.g. load_genome_windows(...)['validation']) or use policy='static'."
            )
        first_window = first_examples(train_dataset, 1) if train_dataset is not None else []
        if first_window:  # streaming datasets too: fail before training, not at the first batch
            data_collator.validate_window_length(len(first_window[0]["input_ids"]))
        # An empty held-out set: refused for policy="birdie", dropped (no evaluations) for "static" and "ntp".
        eval_dataset = check_training_data(data_collator, args.policy, eval_dataset, first_window)
        if model is None:
            model = build_causal_lm(
                default_model_config(data_collator.tokenizer, max_position_embeddings=max(2048, args.max_length)),
                seed=args.seed,
            )
        elif isinstance(model, str):
            model = AutoModelForCausalLM.from_pretrained(model, attn_implementation="sdpa")

        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        if embeddings is not None and embeddings.num_embeddings < len(data_collator.tokenizer):
            raise ValueError(
                f"The model has {embeddings.num_embeddings} token embeddings but the tokenizer has "
                f"{len(data_collator.tokenizer)} tokens (Birdie prompts and sentinels included): call "
                "`model.resize_token_embeddings(len(tokenizer))` first."
            )
        self.birdie_callback = BirdieRewardCallback.from_training_args(
            args,
            data_collator,
            schedule_evaluations=eval_dataset is not None,
            run_spec=birdie_run_spec(args, data_collator, model=model, train_dataset=train_dataset),
        )
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            # The tokenizer is the processing class even when only a collator was given: it is saved with the model,
            # and transformers counts `num_input_tokens_seen` ("non_padding") with its pad token.
            processing_class=processing_class if processing_class is not None else data_collator.tokenizer,
            callbacks=[self.birdie_callback] + list(callbacks or []),
            **kwargs,
        )
        self._use_compact_console()
        self._mask_format = self._resolve_mask_format()
        # The loss is computed here, normalised by `num_items_in_batch`, for any model.
        self.model_accepts_loss_kwargs = True
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)
        config = getattr(self.model, "config", None)
        if config is not None:
            # Recorded in config.json so downstream code knows how the checkpoint was trained: `attention="auto"`
            # in fine-tuning reads prefix-trained checkpoints bidirectionally (see birdie_hf.evaluation.finetune).
            trained = list(getattr(config, "birdie_objectives", None) or [])
            config.birdie_objectives = trained + [
                o for o in dict.fromkeys(data_collator.reward_classes) if o not in trained
            ]
            # Each entry with its settings, and the window length: birdie_hf.inference derives from them the gaps
            # the checkpoint was trained to fill (a continued run records its latest mixture and windows).
            config.birdie_mixture = self.birdie_callback.run_spec["entries"]
            if first_window:
                config.birdie_window_length = len(first_window[0]["input_ids"])
            # transformers' Trainer sets `config.use_cache = args.use_cache` (False), which every saved checkpoint
            # then carries: `model.generate` without its KV cache was 6x slower. Training passes ask for no cache.
            config.use_cache = True
        num_entries = len(data_collator.entry_names)
        self._objective_sums = torch.zeros(num_entries, dtype=torch.float64)
        self._objective_counts = torch.zeros(num_entries, dtype=torch.float64)
        # Per entry since the last log: tokens through the model, targets that are bases, and windows (examples), for
        # the compute accounting and the source bases trained on (`birdie_hf.accounting`, `data.source_tokens_seen`).
        self._entry_counts = torch.zeros(3, num_entries, dtype=torch.float64)
        self._base_ids = torch.tensor(data_collator.tokenizer.convert_tokens_to_ids(list("ACGT")))
        # A lookup table over the vocabulary: is this token a base? (kept on the training device)
        self._is_base = torch.zeros(len(data_collator.tokenizer), dtype=torch.bool)
        self._is_base[self._base_ids] = True
        # Tokens counted since the last flush (see `_track_num_input_tokens`): on the device, and on the host.
        self._pending_input_tokens: Optional[torch.Tensor] = None
        self._pending_host_tokens = 0
        self._validation_batches: Optional[list[dict[str, torch.Tensor]]] = None
        self._health_windows: Optional[torch.Tensor] = None
        self._health_warned = False
        self._last_logged_mixture: Optional[dict[str, float]] = None
        self._in_training_loop = False

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        reset_accelerate_loss_scaling(self.accelerator)

    def _load_optimizer_and_scheduler(self, checkpoint: Optional[str]) -> None:
        # birdie_hf._compat.load_optimizer_on_cpu: a multi-process CPU resume under transformers < 5.18.
        plain_files = checkpoint is not None and all(
            os.path.isfile(os.path.join(checkpoint, name)) for name in (OPTIMIZER_NAME, SCHEDULER_NAME)
        )
        sharded = self.is_deepspeed_enabled or self.is_fsdp_enabled
        if not (plain_files and load_optimizer_on_cpu(self.args.world_size, self.args.device.type, sharded)):
            return super()._load_optimizer_and_scheduler(checkpoint)
        self.optimizer.load_state_dict(
            torch.load(os.path.join(checkpoint, OPTIMIZER_NAME), map_location="cpu", weights_only=True)
        )
        self.lr_scheduler.load_state_dict(
            torch.load(os.path.join(checkpoint, SCHEDULER_NAME), map_location="cpu", weights_only=True)
        )

    def _use_compact_console(self) -> None:
        """Swap transformers' `PrinterCallback` / `ProgressCallback` for Birdie's, which print short log lines and a
        table per policy evaluation (integrations still receive every key, see [`BirdiePrinterCallback`])."""
        for callback in list(self.callback_handler.callbacks):
            if type(callback) is PrinterCallback:
                compact = BirdiePrinterCallback(self.birdie_callback)
            elif type(callback) is ProgressCallback:
                compact = BirdieProgressCallback(self.birdie_callback, max_str_len=callback.max_str_len)
            else:
                continue
            self.callback_handler.remove_callback(callback)
            self.callback_handler.add_callback(compact)

    # -- data ------------------------------------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self) -> None:
        """Declare the dataset columns the collator reads (`DataCollatorForBirdie.dataset_columns`: `input_ids`).

        `Trainer` keeps the columns named in the model's `forward` signature, but here the collator, not the model,
        reads the dataset: the model receives the collator's packed batch. So with `remove_unused_columns=True` the
        collator's columns survive whatever the model's signature (a wrapper with `forward(**kwargs)` included) and
        provenance columns (`record`, `start`, …) are dropped; with `False` every column reaches the collator, which
        ignores the extra ones.
        """
        if self._signature_columns is None:
            self._signature_columns = list(self.data_collator.dataset_columns)

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
        losses = nn.functional.cross_entropy(
            logits.transpose(1, 2), targets, reduction="none", ignore_index=IGNORE_INDEX
        )
        return losses, targets != IGNORE_INDEX, objective_ids[:, 1:], outputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The mean loss over the batch's targets (`loss_averaging="token"`), or the mean over its packed examples of
        each example's mean target loss (`"example"`); per-entry losses and compute counts are accumulated for the
        logs."""
        losses, valid, objective_ids, outputs = self._token_losses(model, inputs)
        if self.args.loss_averaging == "example":
            loss = example_mean_loss(losses, valid, inputs)
            if num_items_in_batch is not None:  # training: transformers leaves the gradient-accumulation scaling to us
                loss = loss / self.current_gradient_accumulation_steps
        elif num_items_in_batch is not None:
            loss = losses.sum() / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
        else:
            loss = losses.sum() / valid.sum().clamp(min=1)
        if model.training:
            self._count_entries(inputs, losses, valid, objective_ids)
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _count_entries(
        self, inputs: dict[str, torch.Tensor], losses: torch.Tensor, valid: torch.Tensor, objective_ids: torch.Tensor
    ) -> None:
        """Add this micro-batch's per-entry losses and counts (tokens, base targets, windows) to the sums logged at
        the next logging step. Masks weigh every position instead of selecting some, so nothing here waits for the
        device: no boolean gathers (their output size is only known after the kernels ran) and no host copies.

        Args:
            losses, valid, objective_ids: `(rows, length - 1)`, as [`_token_losses`] returns them.
        """
        device = losses.device
        if self._is_base.device != device:
            self._is_base = self._is_base.to(device)
            self._entry_counts = self._entry_counts.to(device)
            self._objective_sums = self._objective_sums.to(device)
            self._objective_counts = self._objective_counts.to(device)
        input_entries = inputs["objective_ids"]  # (rows, length), -1 on padding
        real = input_entries >= 0
        bases = valid & self._is_base[inputs["labels"][:, 1:].clamp(min=0)]
        starts = real & (inputs["position_ids"] == 0)  # one packed example per window
        for row, (entries, weight) in enumerate(
            ((input_entries, real), (objective_ids, bases), (input_entries, starts))
        ):
            self._entry_counts[row].index_add_(0, entries.clamp(min=0).flatten(), weight.flatten().double())
        # Valid targets always have an entry (>= 0): padding carries no labels.
        entries = objective_ids.clamp(min=0).flatten()
        self._objective_sums.index_add_(0, entries, torch.where(valid, losses, 0.0).flatten().double())
        self._objective_counts.index_add_(0, entries, valid.flatten().double())

    def _track_num_input_tokens(self, inputs: dict[str, torch.Tensor]) -> None:
        """transformers' token counter without its per-step host synchronisation: the micro-batch's count is added up
        where it is known (`"non_padding"`: on the device, the tokens that are not the pad token, as packed rows carry
        no 2-D attention mask; `"all"`: on the host, from the batch's shape), and [`_flush_input_tokens`] adds it to
        `state.num_input_tokens_seen`, all ranks together, at every log and checkpoint during training."""
        mode = self.args.include_num_input_tokens_seen
        if mode == "no" or "input_ids" not in inputs:
            return super()._track_num_input_tokens(inputs)
        input_ids = inputs["input_ids"]
        if mode == "non_padding":
            count = (input_ids != self.processing_class.pad_token_id).sum()
            pending = self._pending_input_tokens
            self._pending_input_tokens = count if pending is None else pending + count
        else:
            self._pending_host_tokens += input_ids.numel()

    def _flush_input_tokens(self) -> None:
        """Move the tokens counted since the last flush into `state.num_input_tokens_seen`. A collective: every rank
        calls it (at every log and checkpoint during training, which every rank reaches)."""
        if self.args.include_num_input_tokens_seen == "no" or not self._in_training_loop:
            return
        pending = torch.full((1,), self._pending_host_tokens, dtype=torch.int64, device=self.args.device)
        if self._pending_input_tokens is not None:
            pending += self._pending_input_tokens.to(self.args.device, torch.int64)
        self.state.num_input_tokens_seen += int(self.accelerator.gather(pending).sum().item())
        self._pending_input_tokens, self._pending_host_tokens = None, 0

    def log(self, logs: dict[str, float], start_time: Optional[float] = None) -> None:
        self._flush_input_tokens()  # every log during training, evaluation logs included, has the exact count
        training = not any(key.startswith("eval_") for key in logs)
        if training and ("loss" in logs or "train_runtime" in logs):
            # Compute accounting (birdie_hf.accounting), with every training log and the final one, so nothing is
            # left uncounted. The total of tokens through the model is transformers' own `num_input_tokens_seen`
            # (`include_num_input_tokens_seen="non_padding"`, the default of BirdieTrainingArguments).
            logs.update(self._entry_count_logs())
        if training and "loss" in logs:
            logs.update(self._training_loss_logs())
            self._objective_sums.zero_()
            self._objective_counts.zero_()
            self._stop_if_diverged(logs)
            mixture = self.data_collator.mixture.as_dict()
            if mixture != self._last_logged_mixture:  # log the active mixture when it changes, not every time
                for name, weight in mixture.items():
                    logs[f"mixture/{name}"] = round(weight, 4)
                self._last_logged_mixture = mixture
        super().log(logs, start_time)

    def _training_loss_logs(self) -> dict[str, float]:
        """Each entry's mean training loss since the last log, all ranks together (`loss/<entry>`; entries not
        drawn since are left out). A collective: every rank calls it."""
        sums = self.accelerator.reduce(self._objective_sums.to(self.args.device), reduction="sum")
        counts = self.accelerator.reduce(self._objective_counts.to(self.args.device), reduction="sum")
        return {
            f"loss/{name}": total / count
            for name, total, count in zip(self.data_collator.entry_names, sums.tolist(), counts.tolist())
            if count > 0
        }

    def _stop_if_diverged(self, logs: dict[str, float]) -> None:
        """Raise [`TrainingDivergedError`] when an objective's mean loss since the last log is not finite (every
        rank reads the same reduced sums, so all stop together). transformers' `logging_nan_inf_filter` hides such
        steps from the logged `loss`; the per-objective sums do not."""
        bad = {
            key[len("loss/") :]: value
            for key, value in logs.items()
            if key.startswith("loss/") and not np.isfinite(value)
        }
        if not bad:
            return
        checkpoint = last_complete_checkpoint(self.args.output_dir) if self.args.output_dir else None
        raise TrainingDivergedError(
            f"training diverged by step {self.state.global_step}: the loss of "
            f"{', '.join(f'{name} is {value}' for name, value in bad.items())} (learning_rate "
            f"{self.args.learning_rate:g}, max_grad_norm {self.args.max_grad_norm}). Lower --learning_rate or keep "
            "gradient clipping on; "
            + (f"the last saved checkpoint is {checkpoint}." if checkpoint else "no checkpoint was saved.")
        )

    def _entry_count_logs(self) -> dict[str, int]:
        """The per-entry counts since the last call, all ranks together, as log values (`tokens/<entry>`,
        `targets/<entry>`, `windows/<entry>`), and reset them. A collective: every rank calls it."""
        counts = self.accelerator.reduce(self._entry_counts.to(self.args.device), reduction="sum")
        self._entry_counts.zero_()
        logs = {}
        for name, (used, bases, windows) in zip(self.data_collator.entry_names, counts.T.tolist()):
            if used > 0:
                logs.update(
                    {f"tokens/{name}": int(used), f"targets/{name}": int(bases), f"windows/{name}": int(windows)}
                )
        return logs

    # -- per-objective validation ----------------------------------------------------------------------------------
    def validation_windows_per_entry(self, eval_dataset, max_steps: Optional[int] = None) -> int:
        """Held-out windows per mixture entry of the reward's fixed set ([`birdie_hf.heldout.validation_windows_per_entry`]
        for this run; `max_steps` defaults to the trainer state's)."""
        return validation_windows_per_entry(
            self.args, self.data_collator, eval_dataset, max_steps or self.state.max_steps or None
        )

    def _build_validation_batches(self, eval_dataset) -> list[dict[str, torch.Tensor]]:
        return build_validation_batches(
            self.data_collator,
            eval_dataset,
            self.validation_windows_per_entry(eval_dataset),
            self.args.seed,
            self.args.per_device_eval_batch_size,
        )

    @torch.no_grad()
    def objective_losses(self, eval_dataset=None, per_example: bool = False):
        """Mean validation loss per mixture entry on the fixed held-out batches, shape `(num_entries,)`.

        Batches are split over ranks and the sums reduced, so every rank gets the same values. With `per_example`,
        returns `(means, examples)`: `examples[i]` holds the mean loss of each held-out example of entry `i`, in a
        fixed order (the same examples at every evaluation), as the standardised reward pairs them.
        """
        if eval_dataset is not None:
            batches = self._build_validation_batches(eval_dataset)
        else:
            if self._validation_batches is None:
                if self.eval_dataset is None:
                    raise ValueError("No eval_dataset: pass one to BirdieTrainer or to evaluate().")
                self._validation_batches = self._build_validation_batches(self.eval_dataset)
            batches = self._validation_batches
        num_entries = len(self.data_collator.entry_names)
        sums = torch.zeros(num_entries, dtype=torch.float64, device=self.args.device)
        counts = torch.zeros_like(sums)
        # Per example (only when asked): (index (rows, length), entry of each example) of every batch.
        layouts = [example_index(batch) for batch in batches] if per_example else []
        offsets = np.concatenate([[0], np.cumsum([len(entries) for _, entries in layouts], dtype=np.int64)])
        example_sums = torch.zeros(int(offsets[-1]), dtype=torch.float64, device=self.args.device)
        example_counts = torch.zeros_like(example_sums)
        # FSDP and DeepSpeed shard the parameters: run the wrapped engine, and give every rank the same number of
        # forward passes (padding with a repeated batch whose losses are not counted), or collectives would hang.
        model = self.model_wrapped if (self.is_fsdp_enabled or self.is_deepspeed_enabled) else self.model
        was_training = model.training
        model.eval()
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        passes = range(-(-len(batches) // world))
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
            if per_example:  # the target at position t + 1 belongs to the example of token t + 1
                slots = layouts[index][0][:, 1:].to(valid.device)[valid] + int(offsets[index])
                example_sums.index_add_(0, slots, losses[valid].double())
                example_counts.index_add_(0, slots, torch.ones_like(slots, dtype=torch.float64))
        model.train(was_training)
        sums = self.accelerator.reduce(sums, reduction="sum")
        counts = self.accelerator.reduce(counts, reduction="sum")
        means = (sums / counts.clamp(min=1)).cpu().numpy()
        if not per_example:
            return means
        example_sums = self.accelerator.reduce(example_sums, reduction="sum")
        example_counts = self.accelerator.reduce(example_counts, reduction="sum")
        per_slot = (example_sums / example_counts.clamp(min=1)).cpu().numpy()
        entry_of = np.concatenate([entries for _, entries in layouts])
        return means, [per_slot[entry_of == entry] for entry in range(num_entries)]

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Per-objective validation losses: metrics `{prefix}_loss` (mean over entries) and `{prefix}_loss/<entry>`.

        Without `eval_dataset` the losses come from the fixed held-out batches (see [`objective_losses`]). Only the
        policy's own scheduled evaluations (requested by [`BirdieRewardCallback`] during training) feed the reward
        policy; their decision is logged separately (`next_mixture/*`, `reward/*`, `policy/*`). Any other call,
        e.g. from `eval_strategy` or with other data, only measures.
        """
        import time

        start = time.time()
        feeds_policy = (
            eval_dataset is None and self._in_training_loop and self.birdie_callback.is_due(self.state.global_step)
        )
        examples = None
        if feeds_policy and self.args.policy_reward == "standardised":
            losses, examples = self.objective_losses(per_example=True)
        else:
            losses = self.objective_losses(eval_dataset)
        metrics = {f"{metric_key_prefix}_loss": float(losses.mean())}
        for name, value in zip(self.data_collator.entry_names, losses.tolist()):
            metrics[f"{metric_key_prefix}_loss/{name}"] = value
        health = self.training_health() if feeds_policy else None
        if health is not None:
            metrics.update(
                {
                    "health/next_base_loss": health.next_base_loss,
                    "health/composition_loss": health.composition_loss,
                    "health/constant_fraction": health.constant_fraction,
                }
            )
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - start, 4)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        logs = dict(metrics)
        if feeds_policy:  # one log entry per evaluation
            logs.update(
                self.birdie_callback.observe(
                    self.args, self.state, losses, examples, health=None if health is None else health.to_dict()
                )
            )
        self.log(logs)
        return metrics

    @torch.no_grad()
    def training_health(self) -> Optional[HealthReading]:
        """Read the model's health on fixed held-out windows ([`birdie_hf.health.measure_health`]): its next-base
        loss against the composition loss of the same bases, and the constant fraction after the first layer. Warns
        once (a line naming what to try) when the run has not left the composition after `health_check_fraction` of
        training. `None` without held-out windows."""
        if self.eval_dataset is None or len(self.eval_dataset) == 0:
            return None
        if self._health_windows is None:
            self._health_windows = health_windows(self.eval_dataset, self.args.seed)
        model = self.model_wrapped if (self.is_fsdp_enabled or self.is_deepspeed_enabled) else self.model
        with self.compute_loss_context_manager():
            reading = measure_health(
                model, self._health_windows.to(self.args.device), self._base_ids.tolist(), self.state.global_step
            )
        earlier = [record["health"] for record in self.birdie_callback.trajectory if record.get("health")]
        warning = health_warning(
            reading, earlier, self.state.global_step / max(1, self.state.max_steps), self.args.health_check_fraction
        )
        if warning and not self._health_warned:
            if self.is_world_process_zero():
                logger.warning(warning)
            self._health_warned = True
        return reading

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def _save(self, output_dir: Optional[str] = None, state_dict=None) -> None:
        """`Trainer._save` (weights, config and the tokenizer), with the tokenizer's config written so that
        transformers 4.x loads it too ([`make_tokenizer_config_portable`])."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            make_tokenizer_config_portable(output_dir if output_dir is not None else self.args.output_dir)

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """Save a checkpoint, Birdie state first.

        `Trainer._save_checkpoint` writes the model, optimizer, scheduler, RNG and `trainer_state.json` (last), then
        pushes the folder to the Hub and rotates old checkpoints (`save_total_limit`). The Birdie state is written
        into the folder before all that, so a pushed checkpoint carries it and rotation only deletes older
        checkpoints once the new one is complete; a run killed while saving leaves a folder without
        `trainer_state.json`, which [`last_complete_checkpoint`] skips.
        """
        # The folder the parent saves into (`_get_output_dir` differs from `output_dir` only in hyper-parameter
        # search).
        run_dir = self.args.output_dir if trial is None else self._get_output_dir(trial=trial)
        # Never save weights that diverged since the last log (with save_steps below logging_steps the log would
        # otherwise name this checkpoint as the one to go back to). A collective: every rank saves.
        self._stop_if_diverged(self._training_loss_logs())
        # Counts since the last log go into `log_history` now, so the checkpoint's accounting is exact and a run
        # resumed from it counts every window once (the parent saves `log_history` in `trainer_state.json`). They are
        # bookkeeping, not a log: integrations and the console do not see this entry.
        self._flush_input_tokens()  # `trainer_state.json` holds the exact count
        pending = self._entry_count_logs()
        if pending:
            self.state.log_history.append({**pending, "epoch": self.state.epoch, "step": self.state.global_step})
        checkpoint = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self.args.should_save:
            stale_state = os.path.join(checkpoint, TRAINER_STATE_NAME)
            if os.path.exists(stale_state):
                # Left by an abandoned run that got this far: until the parent rewrites it, the folder must read as
                # incomplete, or a crash in this save would leave old and new files that look like one checkpoint.
                logger.info("Overwriting %s, left by an earlier run.", checkpoint)
                try:
                    os.remove(stale_state)
                except FileNotFoundError:  # another node's process sharing this file system was first
                    pass
            remove_incomplete_checkpoints(run_dir, self.state.global_step, self.args.save_only_model)
            self.save_birdie_state(checkpoint)
        super()._save_checkpoint(model, trial)
        if self.args.should_save and os.path.isdir(checkpoint):
            write_checkpoint_checksums(checkpoint)

    def _save_rng_state(self, output_dir: str) -> None:
        """Save this rank's RNG state, then wait for every rank.

        Each rank writes its own `rng_state_<rank>.pth`, and rank 0 writes `trainer_state.json` (the file that marks
        a checkpoint complete, see [`checkpoint_problems`]) right after its own: without this barrier a run killed in
        between leaves a checkpoint that reads as complete but lacks another rank's RNG state.
        """
        super()._save_rng_state(output_dir)
        self.accelerator.wait_for_everyone()

    def save_birdie_state(self, directory: str, policy_state: bool = True) -> None:
        """Write the mixture trajectory and, with `policy_state`, the policy state into `directory`
        ([`birdie_hf.runs.checkpoints.save_birdie_state`]). A run's final folder needs only the trajectory (its
        record): the policy state is what a resume reads, from a checkpoint."""
        save_birdie_state(
            directory, self.mixture_trajectory(), self.birdie_callback.state_dict() if policy_state else None
        )

    def load_birdie_state(self, checkpoint: str) -> None:
        """Restore the policy, mixture and trajectory saved in `checkpoint` (a `checkpoint-N` folder).

        Raises:
            `ValueError`: the state file is missing or unreadable, or it was saved by a run with another policy mode,
                other objective entries or settings, another initial mixture or other reward-policy settings.
        """
        state = read_birdie_state(checkpoint)
        try:
            self.birdie_callback.load_state_dict(state)
        except ValueError as error:
            raise ValueError(
                f"Cannot resume from {checkpoint!r}: {error} To train with the new settings, start a new run with "
                f"another `output_dir` than {self.args.output_dir!r}; to continue this run, resume with its original "
                "settings."
            ) from error

    def mixture_trajectory(self) -> dict[str, Any]:
        """The run's evaluations (step, per-entry losses, mixture in force, rewards, the next mixture and the health
        reading), its health so far ([`birdie_hf.health.health_summary`]) and its compute accounting so far
        ([`compute_accounting`])."""
        return {
            "policy": self.args.policy,
            "entries": self.data_collator.entry_names,
            "reward_classes": self.data_collator.reward_classes,
            "evaluations": self.birdie_callback.trajectory,
            "health": health_summary(self.birdie_callback.trajectory),
            "compute": compute_accounting(
                self.state.log_history,
                self.data_collator.entry_names,
                [objective.unseen_target_fraction for objective in self.data_collator.transforms],
            ),
        }

    def widget_sequences(self, count: int = 2, length: int = 64) -> list[str]:
        """Real DNA strings (the first held-out windows, else the first training windows, decoded) for model-card
        widgets. Works with streaming datasets (see [`first_examples`])."""
        dataset = self.eval_dataset if self.eval_dataset is not None else self.train_dataset
        tokenizer = self.data_collator.tokenizer
        return [
            tokenizer.decode(example["input_ids"][:length], skip_special_tokens=True)
            for example in first_examples(dataset, count)
        ]

    def create_model_card(
        self,
        model_name: Optional[str] = None,
        evaluation: Optional[list[dict]] = None,
        training_data: Optional[str] = None,
        tokens_seen: Optional[int] = None,
        evaluation_protocol: Optional[str] = None,
        held_out: Optional[str] = None,
        **kwargs,
    ) -> None:
        """Write the Birdie model card (mixture trajectory, training settings, widget examples, the held-out
        next-base loss beside Markov baselines when `held_out` is given or `output_dir` holds it, and downstream
        results with their protocol when given) to `output_dir/README.md`; `push_to_hub` uploads it.

        The window length and widget examples are read from the first windows of the datasets, streaming ones
        included (an `IterableDataset` is read from a copy, so a training stream keeps its position).
        """
        if not self.is_world_process_zero():
            return
        if held_out is None:  # the table the end-of-run record wrote; kept on push_to_hub
            held_out = read_held_out_table(self.args.output_dir)
        repo_id = self.args.hub_model_id or model_name or os.path.basename(self.args.output_dir.rstrip("/"))
        first_window = first_examples(self.train_dataset, 1) if self.train_dataset is not None else []
        training = training_facts(
            self.model,
            steps=self.state.global_step,
            max_length=self.args.max_length,
            window_length=len(first_window[0]["input_ids"]) if first_window else None,
            tokens_seen=tokens_seen,
            training_data=training_data,
        )
        card = pretrained_model_card(
            repo_id,
            self.mixture_trajectory(),
            training,
            widget_sequences=self.widget_sequences(),
            evaluation=evaluation,
            evaluation_protocol=evaluation_protocol,
            held_out=held_out,
        )
        card.save(os.path.join(self.args.output_dir, "README.md"))

    def train(self, resume_from_checkpoint: Union[str, bool, None] = None, **kwargs):
        """[`~transformers.Trainer.train`], restoring the Birdie state when resuming.

        Args:
            resume_from_checkpoint (`str` or `bool`, *optional*):
                `True` resumes from the last complete checkpoint of `output_dir`; incomplete or damaged ones (a run
                killed while saving, a truncated file) are skipped with a warning naming them. A path must be a
                complete checkpoint, or a `ValueError` names what is missing or damaged in it. Resuming refuses a
                checkpoint saved with another policy mode, other objective entries or settings, or other
                reward-policy settings.
        """
        # One live run per output folder, checked before any work (`runs.folder.open_run_folder`); a refusal ends every
        # process instead of leaving the others waiting.
        lock, refusal = None, None
        if self.is_world_process_zero():
            try:
                lock = open_run_folder(self.args, self.model, bool(resume_from_checkpoint), self._run_differences)
            except (OSError, ValueError) as error:
                refusal = error
        share_refusal(self.accelerator.num_processes, refusal)
        try:
            if resume_from_checkpoint:
                resume_from_checkpoint = checkpoint_to_resume(
                    self.args.output_dir, resume_from_checkpoint, not self.args.save_only_model
                )
                self.load_birdie_state(resume_from_checkpoint)
                finished = self._already_complete(resume_from_checkpoint)
                if finished is not None:
                    return finished
            self._in_training_loop = True
            self._pending_input_tokens, self._pending_host_tokens = None, 0
            try:
                with self._compile_each_shape_once():
                    return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
            finally:
                self._in_training_loop = False
        finally:
            if lock is not None:
                lock.release()

    def _compile_each_shape_once(self):
        """On the GPU fast path, every distinct batch shape (the training batches, the held-out batches of the reward)
        gets its own static compiled graph, compiled once, instead of dynamo's switch to a slower dynamic-shape graph
        at the second shape it sees (`torch._dynamo.config.automatic_dynamic_shapes`, for this run only)."""
        if self.args.fast_path != "on":
            return contextlib.nullcontext()
        import torch._dynamo

        return torch._dynamo.config.patch(automatic_dynamic_shapes=False)

    def _run_differences(self, checkpoint: str) -> list[str]:
        """How the run that saved `checkpoint` differs from this one (empty: the same settings)."""
        return saved_run_differences(checkpoint, self.birdie_callback.run_spec)

    def _already_complete(self, checkpoint: str) -> Optional[TrainOutput]:
        """When `checkpoint` is the end of the run (its step reaches `max_steps`), restore its weights and state and
        return the run's `TrainOutput` (metrics `{"already_complete": True}`) instead of training one more step, as
        `Trainer.train` would; None otherwise."""
        state = TrainerState.load_from_json(os.path.join(checkpoint, TRAINER_STATE_NAME))
        target = self.args.max_steps if self.args.max_steps > 0 else state.max_steps
        if not target or state.global_step < target:
            return None
        self._load_from_checkpoint(checkpoint)
        self.state = state
        losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
        logger.warning(
            "The run in %s is already complete at step %d (max_steps %d): nothing to train.",
            self.args.output_dir,
            state.global_step,
            target,
        )
        return TrainOutput(
            state.global_step, float(losses[-1]) if losses else float("nan"), {"already_complete": True}
        )


def example_slots(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Which packed example each token of a collated batch belongs to, shape `(rows, length)`: the examples numbered
    across the batch in row order, `-1` on padding (an example starts where `position_ids` restart at 0)."""
    real = batch["objective_ids"] >= 0
    starts = (batch["position_ids"] == 0) & real
    per_row = starts.sum(dim=1)
    index = torch.cumsum(starts.long(), dim=1) - 1 + (torch.cumsum(per_row, 0) - per_row)[:, None]
    return torch.where(real, index, -1)


def example_index(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, np.ndarray]:
    """Which packed example each token of a collated batch belongs to, and each example's mixture entry.

    Returns:
        `(index, entries)`: `index` is [`example_slots`] (shape `(rows, length)`); `entries` of shape `(examples,)` is
        the mixture entry of each example.
    """
    starts = (batch["position_ids"] == 0) & (batch["objective_ids"] >= 0)
    return example_slots(batch), batch["objective_ids"][starts].cpu().numpy()


def example_mean_loss(losses: torch.Tensor, valid: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean over a batch's packed examples of each example's mean target loss (the BirdieDNA authors' averaging:
    per sample, then over the batch), so an example with few targets (a short infilling answer) weighs as much as one
    with many (a copied window).

    Args:
        losses (`torch.Tensor` of shape `(rows, length - 1)`): per-target losses (the target at `t + 1` predicted at
            `t`).
        valid (`torch.Tensor` of shape `(rows, length - 1)`): `True` where a target is scored.
        batch (`dict[str, torch.Tensor]`): the collated batch (`objective_ids`, `position_ids` of shape
            `(rows, length)`).
    """
    slots = example_slots(batch)[:, 1:]  # the target at t + 1 belongs to the example of token t + 1
    keep = (valid & (slots >= 0)).flatten()
    # One slot per token bounds the number of examples, and masks weigh the targets instead of selecting them, so
    # nothing waits for the device to count either.
    sums = torch.zeros(max(slots.numel(), 1), dtype=losses.dtype, device=losses.device)
    slots = slots.clamp(min=0).flatten()
    sums = sums.index_add(0, slots, torch.where(keep, losses.flatten(), 0.0))
    counts = torch.zeros_like(sums).index_add_(0, slots, keep.to(losses.dtype))
    scored = (counts > 0).sum().clamp(min=1)
    return (sums / counts.clamp(min=1)).sum() / scored  # 0 (with a graph) when nothing is scored
