"""`DataCollatorForBirdie`: draw an objective per window from the live mixture, apply it, pack the examples."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Optional, Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.data.data_collator import DataCollatorMixin

from .mixture import LiveMixture, per_objective_weights
from .objectives import Objective, ObjectiveSpec, build_objectives, parse_mixture
from .objectives.base import ObjectiveExample, check_example
from .packing import pack_examples, packed_attention_mask


@dataclass
class DataCollatorForBirdie(DataCollatorMixin):
    """Data collator for Birdie pre-training.

    For every window in the batch it draws an objective from the live [`LiveMixture`], turns the window into an
    example with that objective (cropping it at a random offset to the longest input whose example fits
    `max_length`), then packs the examples into rows of at most `max_length` tokens.

    Args:
        tokenizer ([`~transformers.PreTrainedTokenizerBase`]):
            The DNA tokenizer; it must have the Birdie prompt and sentinel tokens (see [`build_dna_tokenizer`]).
        objectives (`list`, *optional*):
            Mixture entries: objective names, dicts or [`ObjectiveSpec`]s. Defaults to [`DEFAULT_MIXTURE`].
        max_length (`int`, *optional*, defaults to `1024`):
            Row length in tokens. Every objective is checked at construction to fit in it.
        example_length (`int`, *optional*):
            Most tokens per example: each window is cropped (at a random offset) to the longest input whose example
            fits it, so every objective's examples cost about the same compute (copying reads half the bases that
            next-token prediction reads) and the rows of a batch do not depend on the mixture: with `max_length` at
            least `k * example_length`, every row holds `k` examples. Defaults to `max_length` (crop only what does
            not fit a row).
        mixture ([`LiveMixture`], *optional*):
            The shared mixture to sample from. Defaults to a new one where every objective type gets an equal share,
            split among its entries (see [`per_objective_weights`]). The reward policy updates it in place, also in
            DataLoader worker processes.
        mask_format (`str`, *optional*, defaults to `"segments"`):
            `"segments"` returns the compact `segment_ids` and `bidirectional_mask` (each `(rows, length)`), from
            which [`BirdieTrainer`] builds the mask on the device (dense, or a `flex_attention` block mask): memory
            linear in the row length and cheap to send from DataLoader workers. `"dense"` returns the 4-D additive
            `attention_mask` of shape `(rows, 1, length, length)` itself, ready for `model(**batch)`.
        mask_dtype (`torch.dtype`, *optional*, defaults to `torch.float32`):
            Dtype of the dense mask; use the model's compute dtype.
        pad_to_multiple_of (`int`, *optional*, defaults to `8`):
            Row width is the longest packed row rounded up to this.
        static_shapes (`bool`, *optional*, defaults to `False`):
            Give every batch of `n` windows the shape `(ceil(n / k), max_length)`, `k = max_length // example_budget`
            (the rows first-fit packing needs at most, since any `k` examples fit a row): rows are padded to
            `max_length` and rows of padding are added. A compiled model then runs every step without recompiling,
            at the cost of the padding (none when `example_length` divides `max_length` and windows fill their
            examples). [`BirdieTrainer`] turns it on with the GPU fast path (`BirdieTrainingArguments.fast_path`).
        static_batch_windows (`int`, *optional*):
            With `static_shapes`, the windows of a full batch: a smaller batch (an epoch's last) gets a full batch's
            rows, so every training batch has the same shape. Set from `per_device_train_batch_size` by
            [`~DataCollatorForBirdie.from_training_args`].
        seed (`int`, *optional*, defaults to `0`):
            Every batch draws from `np.random.default_rng([seed, epoch, crc32(batch token ids)])`, so batches are
            reproducible in any worker and after resuming, and repeated windows get new draws each epoch.
        return_tensors (`str`, *optional*, defaults to `"pt"`): only `"pt"` is supported.

    Features must have an `input_ids` entry (a window of token ids). The batch holds `input_ids`, `labels`,
    `position_ids`, `objective_ids` (entry index per token, `-1` on padding) and the mask, all `(rows, length)`
    except the dense mask. The number of rows is at most the number of windows.

    Example:

    ```python
    >>> from birdie_hf import DataCollatorForBirdie, build_dna_tokenizer
    >>> tokenizer = build_dna_tokenizer()
    >>> collator = DataCollatorForBirdie(tokenizer, max_length=512, mask_format="dense")  # Birdie's full mixture
    >>> window = tokenizer("ACGGTCATTGCA" * 16, add_special_tokens=False)["input_ids"]  # 192 bases
    >>> batch = collator([{"input_ids": window}] * 4)
    >>> sorted(batch)
    ['attention_mask', 'input_ids', 'labels', 'objective_ids', 'position_ids']
    >>> rows, length = batch["input_ids"].shape
    >>> batch["attention_mask"].shape == (rows, 1, length, length) and length <= 512
    True

    ```
    """

    tokenizer: PreTrainedTokenizerBase
    objectives: Optional[list] = None
    max_length: int = 1024
    example_length: Optional[int] = None
    mixture: Optional[LiveMixture] = None
    mask_format: Literal["dense", "segments"] = "segments"
    mask_dtype: torch.dtype = torch.float32
    pad_to_multiple_of: Optional[int] = 8
    static_shapes: bool = False
    static_batch_windows: Optional[int] = None
    seed: int = 0
    return_tensors: str = "pt"
    specs: list[ObjectiveSpec] = field(init=False, repr=False)
    transforms: list[Objective] = field(init=False, repr=False)
    #: Dataset columns the collator reads. [`BirdieTrainer`] keeps them (and drops the others) when
    #: `remove_unused_columns=True`; a subclass that reads more columns extends it.
    dataset_columns: ClassVar[tuple[str, ...]] = ("input_ids",)

    def __post_init__(self):
        if self.return_tensors != "pt":
            raise ValueError(f"DataCollatorForBirdie only supports return_tensors='pt', got {self.return_tensors!r}.")
        if self.mask_format not in ("dense", "segments"):
            raise ValueError(f"`mask_format` must be 'dense' or 'segments', got {self.mask_format!r}.")
        if self.max_length < 2:
            raise ValueError(f"`max_length` must be at least 2, got {self.max_length}.")
        if self.example_length is not None and not 2 <= self.example_length <= self.max_length:
            raise ValueError(
                f"`example_length` must be between 2 and `max_length` ({self.max_length}), got {self.example_length}."
            )
        self.specs = parse_mixture(self.objectives)
        self.transforms = build_objectives(self.specs, self.tokenizer)
        self.validate_window_length(None)
        names = [spec.name for spec in self.specs]
        if self.mixture is None:
            self.mixture = LiveMixture(
                names,
                per_objective_weights([spec.weight for spec in self.specs], [spec.objective for spec in self.specs]),
            )
        elif self.mixture.names != names:
            raise ValueError(f"The mixture's entries {self.mixture.names} do not match the objectives {names}.")

    @classmethod
    def from_training_args(cls, tokenizer: PreTrainedTokenizerBase, args) -> "DataCollatorForBirdie":
        """The collator a [`BirdieTrainingArguments`] describes: its objectives (NTP only with `policy="ntp"`),
        `max_length`, seed and initial mixture (see `BirdieTrainingArguments.initial_weights`), with static shapes
        on the GPU fast path (`fast_path="on"`)."""
        specs = args.objective_specs()
        return cls(
            tokenizer,
            objectives=[spec.to_dict() for spec in specs],
            max_length=args.max_length,
            example_length=args.example_length,
            mixture=LiveMixture([spec.name for spec in specs], args.initial_weights()),
            static_shapes=args.fast_path == "on",
            static_batch_windows=args.per_device_train_batch_size,
            seed=args.seed,
        )

    # -- properties ----------------------------------------------------------------------------------------------
    @property
    def example_budget(self) -> int:
        """Most tokens of one example: `example_length`, or `max_length` when it is not set."""
        return self.example_length or self.max_length

    @property
    def entry_names(self) -> list[str]:
        """Entry names, in mixture order (the values of `objective_ids`)."""
        return [spec.name for spec in self.specs]

    @property
    def reward_classes(self) -> list[str]:
        """The objective (reward class) of each entry, e.g. `"infilling"` for every infilling configuration."""
        return [spec.objective for spec in self.specs]

    def validate_window_length(self, window_length: Optional[int]) -> None:
        """Raise if an objective's example cannot fit the example budget, or windows of `window_length` tokens
        (`None`: not checked) are too short for any objective of the mixture."""
        budget = "max_length" if self.example_length is None else "example_length"
        for objective in self.transforms:
            objective.validate(self.example_budget, window_length, budget=budget)

    # -- collation -----------------------------------------------------------------------------------------------
    def _windows(self, features: Sequence[dict[str, Any]]) -> list[np.ndarray]:
        windows = []
        for i, feature in enumerate(features):
            if "input_ids" not in feature:
                raise KeyError(f"Feature {i} has no 'input_ids' (keys: {sorted(feature)}).")
            windows.append(np.asarray(feature["input_ids"], dtype=np.int64))
        return windows

    def _batch_rng(self, windows: list[np.ndarray], salt: int = 0, epoch: Optional[int] = None) -> np.random.Generator:
        digest = 0
        for window in windows:
            digest = zlib.crc32(window.tobytes(), digest)
        epoch = self.mixture.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, epoch, salt, digest])

    def _apply(self, index: int, window: np.ndarray, rng: np.random.Generator) -> ObjectiveExample:
        objective = self.transforms[index]
        needed = objective.min_source_length()
        if len(window) < needed:
            raise ValueError(
                f"A window of {len(window)} tokens is too short for objective {self.specs[index].name!r}, which "
                f"needs at least {needed}. Use longer windows or change that objective's settings."
            )
        keep = objective.source_length(self.example_budget)
        if len(window) > keep:
            offset = int(rng.integers(0, len(window) - keep + 1))
            window = window[offset : offset + keep]
        example = objective(window, rng)
        check_example(example, self.specs[index].name, self.example_budget)
        return example

    def torch_call(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        windows = self._windows(features)
        rng = self._batch_rng(windows)
        choices = rng.choice(len(self.transforms), size=len(windows), p=self.mixture.weights)
        return self._collate(windows, choices.tolist(), rng)

    def collate_objective(self, features: Sequence[dict[str, Any]], index: int) -> dict[str, torch.Tensor]:
        """Collate `features` with entry `index` for all of them (deterministic in the features and `index`)."""
        return self.collate_with_objectives(features, [index] * len(features))

    def collate_with_objectives(
        self, features: Sequence[dict[str, Any]], objective_indices: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        """Collate with a given entry per feature instead of drawing from the mixture, e.g. for the fixed
        per-objective validation batches of the reward. Deterministic in the features and indices alone (not the
        epoch), so a resumed run rebuilds the same validation batches."""
        if len(objective_indices) != len(features):
            raise ValueError(f"Got {len(objective_indices)} objective indices for {len(features)} features.")
        for index in objective_indices:
            if not 0 <= index < len(self.transforms):
                raise IndexError(f"Objective index {index} out of range for {len(self.transforms)} entries.")
        windows = self._windows(features)
        salt = 1 + zlib.crc32(np.asarray(objective_indices, dtype=np.int64).tobytes())
        return self._collate(windows, list(objective_indices), self._batch_rng(windows, salt=salt, epoch=0))

    def _static_rows(self, windows: int) -> int:
        """Rows of a batch of `windows` with `static_shapes`: those of a full batch (`static_batch_windows`) or more,
        `ceil(windows / k)` for `k = max_length // example_budget` examples per row (first-fit never needs more)."""
        windows = max(windows, self.static_batch_windows or 0)
        return -(-windows // (self.max_length // self.example_budget))

    def _collate(self, windows: list[np.ndarray], choices: list[int], rng: np.random.Generator):
        examples = [self._apply(index, window, rng) for index, window in zip(choices, windows)]
        packed = pack_examples(
            examples,
            choices,
            max_length=self.max_length,
            pad_token_id=self.tokenizer.pad_token_id,
            pad_to_multiple_of=self.pad_to_multiple_of,
            min_rows=self._static_rows(len(examples)) if self.static_shapes else 0,
            full_width=self.static_shapes,
        )
        batch = {key: torch.from_numpy(value) for key, value in packed.items()}
        if self.mask_format == "dense":
            segment_ids = batch.pop("segment_ids")
            bidirectional = batch.pop("bidirectional_mask")
            batch["attention_mask"] = packed_attention_mask(segment_ids, bidirectional, self.mask_dtype)
        return batch
