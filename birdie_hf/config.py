"""`BirdieTrainingArguments`: `TrainingArguments` plus the objectives and the reward policy."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from transformers import TrainingArguments

from .mixture import normalize_weights, per_objective_weights, resolve_fixed_shares, with_fixed_shares
from .objectives import DEFAULT_MIXTURE, ObjectiveConfigError, parse_mixture
from .policy import ExplorationSchedule, PolicyConfig, evaluation_schedule
from .policy.settings import POLICY_RANGES, Range, check_setting, setting_metadata
from .presets import DEFAULT_PRESET, PRESETS, preset_arguments


POLICY_MODES = ("birdie", "static", "ntp")

logger = logging.getLogger(__name__)


def _accelerator_available() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return True
    return hasattr(torch, "xpu") and torch.xpu.is_available()


@dataclass
class BirdieTrainingArguments(TrainingArguments):
    r"""
    Configuration class for [`BirdieTrainer`].

    Only the parameters specific to Birdie are listed here; see [`~transformers.TrainingArguments`] for the rest.

    Parameters:
        preset (`str`, *optional*, defaults to `"dna"`):
            The named preset ([`PRESETS`]) whose values every objective and policy setting you leave unset takes:
            `"dna"` (Birdie calibrated on DNA, the library's defaults) or `"paper"` (Birdie as published). Values you
            give win. Kept with the arguments (`training_args.bin`); the run spec and the model card record the
            values in effect. [`~BirdieTrainingArguments.from_preset`] and a recipe's `--preset` set it.

        > Parameters that control the objectives

        objectives (`list`, *optional*):
            Mixture entries: objective names (`"infilling"`) or dicts (`{"objective": "infilling", "name":
            "infilling_long", "mean_span_length": 32, "weight": 1.0}`). Defaults to the preset's: Birdie's full
            objective set ([`DEFAULT_MIXTURE`]; under `dna` with span layouts that keep both window ends). Ignored
            with `policy="ntp"`.
        objective_weights (`list[float]`, *optional*):
            Initial weights, one per entry (normalised), used as given. Defaults to `initial_mixture`.
        initial_mixture (`str`, *optional*, the preset's: `"per_objective"`):
            How entries' `weight`s become the starting mixture when `objective_weights` is not given:
            `"per_objective"` divides each entry's weight by the number of entries of its objective, so every
            objective *type* starts with an equal share split among its configurations (as in Birdie);
            `"per_entry"` uses the weights as they are (uniform over entries).
        max_length (`int`, *optional*, defaults to `1024`):
            Packed row length in tokens.
        example_length (`int`, *optional*):
            Most tokens per example (see [`DataCollatorForBirdie`]): each window is cropped to the longest input
            whose example fits, so every objective's example costs about the same compute and the packed rows of a
            step do not depend on the mixture. Set it to `max_length // k` for `k` examples per row; then every arm
            of a comparison (any mixture, any policy) trains the same number of rows per step. Defaults to
            `max_length`.
        max_tokens (`int`, *optional*):
            Compute budget in example tokens, instead of `max_steps`: the run takes
            `ceil(max_tokens / (example_length * per_device_train_batch_size * gradient_accumulation_steps *
            world_size))` steps. Needs `example_length`, so that the budget is the same number of steps and rows for
            every mixture; the tokens actually trained on are logged as `num_input_tokens_seen` (a little below the
            budget: examples are at most `example_length` tokens).
        attention_mask_format (`str`, *optional*, defaults to `"auto"`):
            How packed masks reach the model: `"dense"` (4-D additive mask, memory quadratic in row length; works
            with `sdpa` and `eager` everywhere), `"flex"` (a `flex_attention` `BlockMask`, memory linear in row
            length; needs `attn_implementation="flex_attention"`, trains on CUDA only), or `"auto"` (flex when the
            model uses flex attention on CUDA, dense otherwise).
        fast_path (`str`, *optional*, defaults to `"auto"`):
            The GPU fast path: `"on"` compiles the model (`torch_compile`), gives every batch one shape
            (`DataCollatorForBirdie.static_shapes`, so the compiled model never recompiles), copies batches to the
            device without waiting (pinned memory, `non_blocking`), and (with `attn_implementation="auto"` in the
            recipe) attends with compiled `flex_attention` block masks; precision stays as given (`bf16=True`).
            `"auto"` (the default) is `"on"` on CUDA unless the CPU is asked for (`use_cpu`, `accelerate launch
            --cpu`) and `"off"` elsewhere (a CPU run's step is already near that machine's limit,
            `benchmarks/training_throughput.py`); resolved to `"on"` or `"off"` when the arguments are built. `"on"`
            turns `torch_compile` on; `"off"` leaves every setting as given. Whatever its value, a training step has
            no host synchronisation: [`BirdieTrainer`] counts tokens and per-entry losses on the device and reads them
            at logging steps (transformers releases that count tokens inline, 5.2 among them, keep one `.item()` per
            micro-step: `_compat.TRAINER_COUNTS_TOKENS_INLINE`). `benchmarks/gpu_throughput.py` measures it against
            a minimal PyTorch loop.

        > Parameters that control the policy

        policy (`str`, *optional*, defaults to `"birdie"`):
            `"birdie"`: the reward model re-weights the mixture during training. `"static"`: the initial mixture is
            kept (UL2-style baseline). `"ntp"`: next-token prediction only (the paper's baseline).
        policy_warmup_steps (`int`, *optional*):
            Steps on the initial mixture before the policy takes over, with evaluations at 1/25, 1/5 and all of it.
            Defaults to Birdie's 250 for runs of at least 8,000 steps, `max_steps // 32` (at least 10) for shorter
            ones.
        policy_eval_interval (`int`, *optional*):
            Steps between policy evaluations once the schedule is steady. Defaults to Birdie's schedule in units of
            the warm-up `w`: evaluations at `2w, 4w, 6w, 8w` after the warm-up, then every `4w` (for `w = 250`:
            500, 1000, 1500, 2000, then every 1000 steps). When set, evaluations run every `policy_eval_interval`
            steps after the warm-up.
        policy_validation_fraction (`float`, *optional*, defaults to `0.005`):
            Share of the run's model compute that the reward's held-out measurement may use (below about 10,000 steps
            of the default model the floor `policy_validation_min_windows` costs more: 8 windows under 13 entries
            are about 4.6 training steps of forward passes per evaluation). The fixed held-out set
            gets the same number of windows for every entry, as many as fit in this share (forward passes on
            `policy_validation_windows x entries` examples at each scheduled evaluation, against the forward and
            backward passes of `max_steps` training batches), within `[policy_validation_min_windows,
            policy_validation_max_windows]`. The reward compares the *same* examples at both ends of an interval, so
            few windows suffice: 8 per entry keep the relative loss change of every entry within 0.022 of the whole
            held-out split's (95th percentile), 16 within 0.015 (`benchmarks/reward_noise.py`).
        policy_validation_min_windows (`int`, *optional*, defaults to `8`):
            Fewest held-out windows per entry, whatever the compute share (short runs).
        policy_validation_max_windows (`int`, *optional*, defaults to `64`):
            Most held-out windows per entry (long runs).
        policy_validation_windows (`int`, *optional*):
            Use exactly this many held-out windows per entry instead of sizing them by `policy_validation_fraction`.
        policy_min_weight (`float`, *optional*, defaults to `0.01`): weight every entry keeps (in [0, 1]).
        > The policy settings below, `objectives` and `initial_mixture` default to `None`: the preset's value (see
        > `preset`; `dna` unless you name another); the values of `dna` / `paper` are given in brackets.

        policy_min_predicted_gain (`float`, *optional*, [0 / 0]):
            A gate: the reward model's choice replaces the initial mixture only when it is predicted to earn this much
            more total reward. Neither preset has one (Birdie's reward model chooses every mixture that is not an
            exploration); `tests/test_policy.py` shows 0.05 passing a real improvement and holding back noise on
            synthetic curricula.
        policy_hidden_size (`int`, *optional*, [128 / 256]): reward-model width.
        policy_num_layers (`int`, *optional*, [2 / 4]): reward-model recurrent (GRU) layers over the history of
            (losses, mixture).
        policy_learning_rate (`float`, *optional*, [5e-4 / 5e-4]): reward-model AdamW learning rate.
        policy_weight_decay (`float`, *optional*, [0.1 / 0.1]): reward-model AdamW weight decay.
        policy_update_iterations (`int`, *optional*, [50 / 200]): reward-model steps per evaluation.
        policy_num_candidates (`int`, *optional*, [2048 / 2048]): candidate mixtures scored per decision.
        policy_top_n (`int`, *optional*, [8 / 8]): best candidates averaged into the next mixture.
        policy_exploration_initial (`float`, *optional*, [0.5 / 0.5]): exploration rate after the first decision
            (which always explores).
        policy_exploration_final (`float`, *optional*, [0.2 / 0.2]): exploration rate after the decay.
        policy_exploration_decay_fraction (`float`, *optional*, [0.5 / 0.5]): share of training over which the rate
            decays (cosine).
        policy_exploration_blend (`float`, *optional*, [0.5 / 1.0]): share of an exploration draw in the mixture it
            explores with, in (0, 1]: `1.0` (Birdie) replaces the mixture by the draw; `0.5` averages it with the
            initial mixture, so no entry falls below half its initial share while exploring.
        policy_reward (`str`, *optional*, [`"standardised"` / `"paper"`]):
            `"paper"`: the Birdie paper's reward, `clip(-100 e tanh(e S ratio^3))` of each entry's mean held-out
            loss; designed for text losses of 2-4.5 nats, it reads the small relative changes of DNA losses (which
            stay within a few percent of ln 4) as about 0. `"standardised"`: each entry's paired change over the same
            held-out examples in units of its standard error, `tanh(mean / max(scale * se, min_change))` (see
            [`standardised_rewards`]); the trajectory records each entry's t statistic (`reward_z`).
        policy_reward_scale (`float`, *optional*, [2.0 / 2.0]): standardised reward: standard errors of improvement
            that earn `tanh(1) = 0.76`.
        policy_reward_min_change (`float`, *optional*, [0.03 / 1e-3]): standardised reward: nats of change below
            which an entry earns little, however consistent (a solved copying task).
        policy_fixed_shares (`list[str]`, *optional*, [`["next_token_prediction=0.5"]` / none]):
            Entries whose share of the mixture is fixed, as `name=share` (an entry, or an objective whose entries
            split the share), e.g. `["next_token_prediction=0.5"]`: the initial mixture and every mixture the policy
            chooses give them these shares, and the policy allocates the rest. With `example_length` set, a share of
            the examples is a share of the compute. `[]` (or `none` on the command line) fixes nothing; a preset's
            fixed shares that do not fit objectives you give are dropped with a warning.

        loss_averaging (`str`, *optional*, defaults to `"token"`):
            How a batch's loss averages its targets. `"token"`: the mean over all targets of the batch (every target
            weighs the same, so an objective's weight in the gradient is its share of the targets). `"example"`: the
            mean over the batch's packed examples of each example's mean target loss, as the BirdieDNA authors'
            code does, so an objective's weight is its share of the examples, whatever their number of targets
            (infilling's short answers weigh as much per example as a copied window). With gradient accumulation and
            several processes it is the mean of the micro-batches' example means.

        > Parameters that report the run's health

        health_check_fraction (`float`, *optional*, defaults to `0.2`):
            At every scheduled evaluation the trainer reads the model on 32 fixed held-out windows (see
            [`birdie_hf.health`]): its next-base loss against the composition loss of the same bases, and how much of
            the first layer's output is one vector shared by every position. A run still at the composition after
            this share of training gets one warning line saying what to try; `summary.md`, the trajectory
            (`health`) and the model card record it. In the pre-registered experiment's geometry, next-token
            prediction leaves the composition within 4-6% of the steps and the `dna` mixture within 5-14%; the
            paper's exploration can keep a run there past 20% (`benchmarks/README.md`, "Training health").

        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            A fresh run (not resumed) refuses an `output_dir` that already holds a pre-training run (its
            `checkpoint-*` folders, or its final outputs when it saved no checkpoint), so two runs never mix; `True`
            removes that run's checkpoints and outputs first (files no run writes stay). A folder of another job (a
            fine-tuned model, an evaluation, another trainer's checkpoints) is refused either way. Resuming
            (`resume_from_checkpoint`) compares the checkpoint's recorded settings (objectives, policy and its
            evaluation schedule, seed, optimisation, precision, batch geometry, `max_steps`, model shape,
            training-data fingerprint) with this run's and refuses, by name, any that differ. A lock file
            (`_birdie_run.lock`) refuses a second live run in the same folder.

    > [!NOTE]
    > Changed `TrainingArguments` defaults, for pre-training from scratch: `learning_rate=2e-3`,
    > `warmup_steps=0.1` (a tenth of the run), `lr_scheduler_type="cosine"` and `weight_decay=0.1` (the BirdieDNA
    > authors' schedule; the learning rate was checked for the default model of [`default_model_config`], hidden 128:
    > use about 3e-4 at hidden 512, as the authors do, and a lower rate to continue a trained checkpoint). A warm-up of
    > 15 steps at 2e-3 with tied embeddings left 4 of 6 runs of the pre-registered experiment's `dna` arms at the
    > base-composition loss (`benchmarks/README.md`, "Training health"). `label_names=["labels"]`, `logging_steps=10`,
    > `ddp_find_unused_parameters=False` and `include_num_input_tokens_seen="non_padding"` (transformers counts the
    > tokens through the model, padding excluded: the compute budget the runs are compared at; [`BirdieTrainer`] adds
    > them up on the device and reads the sum at logging steps). `logging_nan_inf_filter=False`: the filter reads
    > every step's loss on the host (a device synchronisation per step), and a non-finite per-objective loss stops
    > the run at the next log anyway ([`TrainingDivergedError`]).
    > `remove_unused_columns` keeps its default: [`BirdieTrainer`] declares the columns its collator reads
    > (`DataCollatorForBirdie.dataset_columns`), so they are never removed.
    > `use_cpu` is switched on when no accelerator (CUDA, MPS, XPU) is present, so that several CPU processes
    > started by `accelerate launch` really train together (gloo) instead of as independent copies.
    > `max_steps` must be a positive number of steps or `-1` (train for `num_train_epochs`); `0` and other negative
    > values are refused rather than read as "use epochs".
    """

    preset: str = field(
        default=DEFAULT_PRESET,
        metadata={
            "help": "Named preset that gives every objective and policy setting left unset its value: dna (the "
            "default: Birdie calibrated on DNA, each deviation measured in benchmarks/) or paper (the Birdie paper). "
            "Flags and YAML keys given win over it.",
            "choices": sorted(PRESETS),
        },
    )
    objectives: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Mixture entries: objective names or JSON objects such as "
            '\'{"objective": "infilling", "mean_span_length": 32}\' (dicts in YAML). '
            "Default: the preset's (Birdie's full set)."
        },
    )
    objective_weights: Optional[list[float]] = field(
        default=None, metadata={"help": "Initial weight per entry (normalised), as given. Default: initial_mixture."}
    )
    initial_mixture: Optional[str] = field(
        default=None,
        metadata={
            "help": "per_objective (each objective type gets an equal share, split among its entries, as in "
            "Birdie) or per_entry (entries' weights as they are). Default: the preset's (per_objective).",
            "choices": ["per_objective", "per_entry"],
        },
    )
    max_length: int = field(default=1024, metadata={"help": "Packed row length in tokens."})
    example_length: Optional[int] = field(
        default=None,
        metadata={
            "help": "Most tokens per example (windows are cropped to fit), so every objective's example costs about "
            "the same and a step's rows do not depend on the mixture (default: max_length)."
        },
    )
    max_tokens: Optional[int] = field(
        default=None,
        metadata={
            "help": "Compute budget in example tokens instead of --max_steps: ceil(max_tokens / (example_length x "
            "windows per step)) steps. Needs --example_length."
        },
    )
    attention_mask_format: str = field(
        default="auto",
        metadata={
            "help": "auto (flex BlockMask for flex_attention models on CUDA, else dense), dense or flex.",
            "choices": ["auto", "dense", "flex"],
        },
    )
    fast_path: str = field(
        default="auto",
        metadata={
            "help": "auto (on with CUDA unless the CPU is asked for, else off), on or off: torch.compile, one batch "
            "shape (rows padded to max_length), non-blocking copies from pinned memory and, with "
            "--attn_implementation auto, compiled flex attention. Precision stays as given (--bf16).",
            "choices": ["auto", "on", "off"],
        },
    )
    policy: str = field(
        default="birdie",
        metadata={
            "help": "birdie (reward model), static (initial mixture) or ntp (next-token only).",
            "choices": list(POLICY_MODES),
        },
    )
    policy_eval_interval: Optional[int] = field(
        default=None,
        metadata=setting_metadata(
            range=Range(True, 1),
            help="Steps between policy evaluations. Default: Birdie's schedule (2w, 4w, 6w, "
            "8w, then every 4w after a warm-up of w steps).",
        ),
    )
    policy_warmup_steps: Optional[int] = field(
        default=None,
        metadata=setting_metadata(
            range=Range(True, 1),
            help="Steps on the initial mixture. Default: 250, or max_steps // 32 (>= 10) for runs under 8,000 steps.",
        ),
    )
    policy_validation_fraction: float = field(
        default=0.005,
        metadata=setting_metadata(
            range=Range(False, 0.0, 1.0),
            help="Share of the run's model compute the reward's held-out measurement may use.",
        ),
    )
    policy_validation_min_windows: int = field(
        default=8, metadata=setting_metadata(range=Range(True, 1), help="Fewest held-out windows per objective entry.")
    )
    policy_validation_max_windows: int = field(
        default=64, metadata=setting_metadata(range=Range(True, 1), help="Most held-out windows per objective entry.")
    )
    policy_validation_windows: Optional[int] = field(
        default=None,
        metadata=setting_metadata(
            range=Range(True, 1),
            help="Exactly this many held-out windows per entry (instead of policy_validation_fraction).",
        ),
    )
    # The settings of a preset (PRESETS) default to None, which takes the preset's value.
    policy_min_predicted_gain: Optional[float] = field(
        default=None,
        metadata=setting_metadata(
            policy_config="min_predicted_gain",
            help="Predicted total-reward gain over the initial mixture needed to leave it (0: no gate).",
        ),
    )
    policy_hidden_size: Optional[int] = field(
        default=None, metadata=setting_metadata(policy_config="hidden_size", help="Reward-model width.")
    )
    policy_num_layers: Optional[int] = field(
        default=None,
        metadata=setting_metadata(policy_config="num_layers", help="Reward-model recurrent (GRU) layers."),
    )
    policy_learning_rate: Optional[float] = field(
        default=None,
        metadata=setting_metadata(policy_config="learning_rate", help="Reward-model AdamW learning rate."),
    )
    policy_weight_decay: Optional[float] = field(
        default=None, metadata=setting_metadata(policy_config="weight_decay", help="Reward-model AdamW weight decay.")
    )
    policy_update_iterations: Optional[int] = field(
        default=None,
        metadata=setting_metadata(policy_config="update_iterations", help="Reward-model MSE steps per evaluation."),
    )
    policy_num_candidates: Optional[int] = field(
        default=None,
        metadata=setting_metadata(policy_config="num_candidates", help="Candidate mixtures scored per decision."),
    )
    policy_top_n: Optional[int] = field(
        default=None,
        metadata=setting_metadata(policy_config="top_n", help="Best candidates averaged into the next mixture."),
    )
    policy_exploration_initial: Optional[float] = field(
        default=None,
        metadata=setting_metadata(policy_config="exploration.initial_rate", help="Initial exploration rate."),
    )
    policy_exploration_final: Optional[float] = field(
        default=None, metadata=setting_metadata(policy_config="exploration.final_rate", help="Final exploration rate.")
    )
    policy_exploration_decay_fraction: Optional[float] = field(
        default=None,
        metadata=setting_metadata(
            policy_config="exploration.decay_fraction",
            help="Share of training over which exploration decays (cosine).",
        ),
    )
    policy_min_weight: float = field(
        default=0.01,
        metadata=setting_metadata(policy_config="min_weight", help="Weight every entry keeps in a mixture."),
    )
    policy_exploration_blend: Optional[float] = field(
        default=None,
        metadata=setting_metadata(
            policy_config="exploration_blend",
            help="Share of an exploration draw in the mixture (1: replace; 0.5: average).",
        ),
    )
    policy_reward: Optional[str] = field(
        default=None,
        metadata=setting_metadata(policy_config="reward", help="paper (the Birdie paper's reward) or standardised (paired change in units of its noise).",
                  choices=["paper", "standardised"]),
    )  # fmt: skip
    policy_reward_scale: Optional[float] = field(
        default=None,
        metadata=setting_metadata(
            policy_config="reward_scale", help="Standardised reward: standard errors of improvement that earn tanh(1)."
        ),
    )
    policy_reward_min_change: Optional[float] = field(
        default=None,
        metadata=setting_metadata(
            policy_config="reward_min_change",
            help="Standardised reward: nats of change below which an entry earns little.",
        ),
    )
    policy_fixed_shares: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Fixed mixture shares as name=share (an entry or an objective), e.g. next_token_prediction=0.5; "
            "the policy allocates the rest; `none` fixes nothing."
        },
    )

    loss_averaging: str = field(
        default="token",
        metadata={
            "help": "token: the loss is the mean over the batch's targets; example: the mean over its packed examples "
            "of each example's mean target loss (the BirdieDNA authors' averaging), so objectives with few targets "
            "per example weigh as much per example as those with many.",
            "choices": ["token", "example"],
        },
    )

    health_check_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Share of training after which a run whose held-out next-base loss is still at the base "
            "composition is reported (one warning line; summary.md and the model card say so)."
        },
    )

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start a fresh run in an output_dir holding another run's checkpoints, removing them."},
    )

    # Changed TrainingArguments defaults
    learning_rate: float = field(
        default=2e-3,
        metadata={"help": "Peak AdamW learning rate (checked for the default model, hidden 128; 3e-4 at hidden 512)."},
    )
    warmup_steps: float = field(
        default=0.1,
        metadata={"help": "Linear warm-up: steps (an integer >= 1) or a share of the run (a float in [0, 1))."},
    )
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule after the warm-up."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    label_names: Optional[list[str]] = field(default_factory=lambda: ["labels"], metadata={"help": "Label keys."})
    logging_steps: float = field(default=10, metadata={"help": "Log every X updates steps."})
    ddp_find_unused_parameters: Optional[bool] = field(
        default=False, metadata={"help": "Kept False: every parameter is used in every step."}
    )
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={
            "help": "transformers' filter of non-finite step losses, off: it waits for the device every step, and "
            "BirdieTrainer stops a run whose per-objective loss is not finite at the next log anyway."
        },
    )
    include_num_input_tokens_seen: str = field(  # `str | bool` in TrainingArguments, whose parser reads it as a bool
        default="non_padding",
        metadata={
            "help": "Count the tokens through the model (`num_input_tokens_seen`): non_padding (packed rows' "
            "padding excluded), all or no. In Python, True / False mean all / no.",
            "choices": ["non_padding", "all", "no"],
        },
    )

    def __post_init__(self):
        if not self.use_cpu and not _accelerator_available():
            # Without this, `accelerate launch --num_processes 2` on a CPU-only machine would silently train two
            # independent copies: accelerate only sets up gloo (MULTI_CPU) when asked for the CPU.
            self.use_cpu = True
        self._resolve_fast_path()
        super().__post_init__()
        if self.fast_path == "on":
            self.accelerator_config.non_blocking = True
        if (
            isinstance(self.max_steps, bool)
            or not isinstance(self.max_steps, int)
            or (self.max_steps == 0 or self.max_steps < -1)
        ):
            raise ValueError(
                f"`max_steps` must be a positive number of optimizer steps, or -1 to train for "
                f"`num_train_epochs` epochs; got {self.max_steps!r}."
            )
        self._check_optimisation()
        if self.output_dir and os.path.isfile(self.output_dir):
            raise ValueError(f"`output_dir` {self.output_dir!r} is a file; give a folder (created when missing).")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            raise ValueError(
                f"`num_train_epochs` must be positive when `max_steps` is -1 (train by epochs); got "
                f"{self.num_train_epochs!r}."
            )
        # A single entry where a list is expected (`objectives: infilling` in YAML, `objectives="infilling"` in
        # Python) means a one-entry list, not a list of characters.
        if isinstance(self.objectives, (str, dict)):
            self.objectives = [self.objectives]
        try:
            self._apply_preset()
        except ObjectiveConfigError as error:
            raise ValueError(f"Invalid `objectives`: {error}") from error
        if isinstance(self.objective_weights, (int, float)) and not isinstance(self.objective_weights, bool):
            self.objective_weights = [self.objective_weights]
        for weight in self.objective_weights or []:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ValueError(f"`objective_weights` must be numbers, got {weight!r} in {self.objective_weights!r}.")
        if self.policy not in POLICY_MODES:
            raise ValueError(f"`policy` must be one of {POLICY_MODES}, got {self.policy!r}.")
        try:
            specs = self.objective_specs()
        except ObjectiveConfigError as error:
            raise ValueError(f"Invalid `objectives`: {error}") from error
        if self.objective_weights is not None and self.policy != "ntp":
            if len(self.objective_weights) != len(specs):
                raise ValueError(
                    f"`objective_weights` has {len(self.objective_weights)} values for {len(specs)} objectives "
                    f"({[s.name for s in specs]})."
                )
            for spec, weight in zip(specs, self.objective_weights):
                if not weight >= 0:
                    raise ValueError(f"`objective_weights` gives {spec.name!r} weight {weight}; weights must be >= 0.")
            if sum(self.objective_weights) <= 0:
                raise ValueError("`objective_weights` are all zero; at least one must be positive.")
        if self.attention_mask_format not in ("auto", "dense", "flex"):
            raise ValueError(
                f"`attention_mask_format` must be auto, dense or flex, got {self.attention_mask_format!r}."
            )
        if self.max_length < 16:
            raise ValueError(f"`max_length` must be at least 16, got {self.max_length}.")
        if self.loss_averaging not in ("token", "example"):
            raise ValueError(f"`loss_averaging` must be token or example, got {self.loss_averaging!r}.")
        if isinstance(self.health_check_fraction, bool) or not 0.0 <= self.health_check_fraction <= 1.0:
            raise ValueError(f"`health_check_fraction` must be in [0, 1], got {self.health_check_fraction!r}.")
        self._apply_token_budget()
        if self.initial_mixture not in ("per_objective", "per_entry"):
            raise ValueError(f"`initial_mixture` must be per_objective or per_entry, got {self.initial_mixture!r}.")
        self._check_policy_settings()
        try:
            self.policy_config()
        except ValueError as error:
            raise ValueError(f"Invalid policy settings: {error}") from error

    def _resolve_fast_path(self) -> None:
        """Turn `fast_path="auto"` into `"on"` (CUDA, not asked for the CPU) or `"off"`, and set what `"on"` implies
        before transformers checks the arguments (`non_blocking` is set after, when `accelerator_config` is built).
        Precision stays as given: pass `bf16=True` for bf16."""
        if self.fast_path not in ("auto", "on", "off"):
            raise ValueError(f"`fast_path` must be auto, on or off, got {self.fast_path!r}.")
        if self.fast_path == "auto":
            import torch

            asked_for_cpu = self.use_cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
            self.fast_path = "on" if torch.cuda.is_available() and not asked_for_cpu else "off"
        if self.fast_path == "on":
            self.torch_compile = True
            self.dataloader_pin_memory = True

    @classmethod
    def from_preset(cls, name: str, **kwargs) -> "BirdieTrainingArguments":
        """Arguments from the preset `name` ([`PRESETS`]), with `kwargs` winning over its values (the same as
        `BirdieTrainingArguments(preset=name, **kwargs)`).

        Example:

        ```python
        >>> args = BirdieTrainingArguments.from_preset("paper", output_dir="out", policy="static")  # its static mixture
        ```

        Raises:
            `ValueError`: `name` is not a preset.
        """
        return cls(**{**kwargs, "preset": name})

    def _apply_preset(self) -> None:
        """Give every preset setting left unset (`None`) the value of [`PRESETS`]`[preset]`.

        A preset's fixed shares name entries of the preset's own mixture: with objectives of your own that lack them,
        they are dropped with a warning (fixed shares you give are checked, and refused when they name no entry).

        Raises:
            `ValueError`: `preset` is not a preset.
        """
        if self.preset is None:  # `preset: null` in YAML, or an explicit None: the default
            self.preset = DEFAULT_PRESET
        values = preset_arguments(self.preset)  # raises on an unknown name
        supplied = {key for key, value in values.items() if getattr(self, key) is None}
        for key in supplied:
            setattr(self, key, values[key])
        if isinstance(self.policy_fixed_shares, str):
            self.policy_fixed_shares = [self.policy_fixed_shares]
        if self.policy_fixed_shares in (["none"], ["None"]):
            self.policy_fixed_shares = []
        if "policy_fixed_shares" in supplied and "objectives" not in supplied and self.policy_fixed_shares:
            specs = parse_mixture(self.objectives)
            try:
                resolve_fixed_shares(self.policy_fixed_shares, [s.name for s in specs], [s.objective for s in specs])
            except ValueError as error:
                logger.warning(
                    "The %r preset's fixed shares (%s) do not fit your objectives (%s): no share is fixed (set "
                    "policy_fixed_shares to fix some).",
                    self.preset,
                    ", ".join(self.policy_fixed_shares),
                    error,
                )
                self.policy_fixed_shares = []
        if self.policy == "ntp" and self.policy_fixed_shares and "policy_fixed_shares" not in supplied:
            raise ValueError(
                f"`policy_fixed_shares` ({', '.join(map(str, self.policy_fixed_shares))}) has nothing to fix with "
                "policy='ntp', which trains next-token prediction alone: drop it, or use policy 'birdie' or 'static'."
            )

    def _apply_token_budget(self) -> None:
        """Check `example_length` and turn `max_tokens` into `max_steps`."""
        if self.example_length is not None:
            if isinstance(self.example_length, bool) or not isinstance(self.example_length, int):
                raise ValueError(f"`example_length` must be an integer, got {self.example_length!r}.")
            if not 16 <= self.example_length <= self.max_length:
                raise ValueError(
                    f"`example_length` must be between 16 and `max_length` ({self.max_length}), got "
                    f"{self.example_length}."
                )
        if self.max_tokens is None:
            return
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"`max_tokens` must be a positive integer, got {self.max_tokens!r}.")
        if self.example_length is None:
            raise ValueError(
                "`max_tokens` needs `example_length`: without it a step's tokens depend on the mixture (copying "
                "writes twice the tokens of next-token prediction), so equal budgets would mean unequal steps."
            )
        per_step = (
            self.example_length * self.per_device_train_batch_size * self.gradient_accumulation_steps * self.world_size
        )
        steps = -(-self.max_tokens // per_step)
        if self.max_steps not in (-1, steps):
            raise ValueError(
                f"Give `max_steps` ({self.max_steps}) or `max_tokens` ({self.max_tokens}, i.e. {steps} steps of "
                f"{per_step} example tokens), not both."
            )
        self.max_steps = steps

    def _check_optimisation(self) -> None:
        """Refuse optimiser settings that cannot train or that BirdieTrainer would ignore, naming the field: a
        non-finite or non-positive learning rate, a non-finite or negative weight decay, a NaN `max_grad_norm` (which
        turns clipping off silently), Adam betas outside [0, 1), and label smoothing (the per-objective loss is a plain
        cross-entropy; transformers' smoother is never called)."""
        import math

        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        if not number(self.learning_rate) or not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be a finite number above 0, got {self.learning_rate!r}.")
        if not number(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be a finite number of at least 0, got {self.weight_decay!r}.")
        if self.max_grad_norm is not None and (
            not number(self.max_grad_norm) or math.isnan(self.max_grad_norm) or self.max_grad_norm < 0
        ):
            raise ValueError(
                f"`max_grad_norm` must be a number of at least 0 (0 turns clipping off), got {self.max_grad_norm!r}."
            )
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not number(value) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
        steps = self.gradient_accumulation_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"`gradient_accumulation_steps` must be a positive integer, got {steps!r}.")
        if self.label_smoothing_factor:
            raise ValueError(
                f"`label_smoothing_factor` ({self.label_smoothing_factor!r}) is not supported: BirdieTrainer's loss is "
                "each objective's plain cross-entropy, so it would be ignored. Leave it at 0."
            )

    def _check_policy_settings(self) -> None:
        """Refuse `policy_*` values of the wrong type or out of range, naming the field, before any training (the
        policy would otherwise fail at its first decision, hundreds of steps in)."""
        for setting in dataclasses.fields(self):
            rule = setting.metadata.get("range") or POLICY_RANGES.get(setting.metadata.get("policy_config"))
            value = getattr(self, setting.name)
            if rule is not None and value is not None:  # None: a schedule setting left to Birdie's schedule
                check_setting(f"`{setting.name}`", value, rule)
        if self.policy_validation_min_windows > self.policy_validation_max_windows:
            raise ValueError(
                f"`policy_validation_min_windows` ({self.policy_validation_min_windows}) must not exceed "
                f"`policy_validation_max_windows` ({self.policy_validation_max_windows})."
            )
        if self.policy_top_n > self.policy_num_candidates:
            raise ValueError(
                f"`policy_top_n` ({self.policy_top_n}) must not exceed `policy_num_candidates` "
                f"({self.policy_num_candidates}): it averages the best of those candidates."
            )

    def __getstate__(self):
        # Pickled arguments (the `training_args.bin` of every checkpoint) never carry secrets; the live object and
        # its copies (`__copy__`/`__deepcopy__` below) keep them for pushing.
        state = dict(self.__dict__)
        for key in list(state):
            if key.endswith("_token") and isinstance(state[key], str) and state[key]:
                state[key] = "<redacted>"
        return state

    def __copy__(self):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo):
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update({key: copy.deepcopy(value, memo) for key, value in self.__dict__.items()})
        return new

    def objective_specs(self):
        """The parsed mixture this run trains on (NTP only with `policy="ntp"`), initial weights applied."""
        if self.policy == "ntp":
            return parse_mixture(["next_token_prediction"])
        specs = parse_mixture(self.objectives if self.objectives is not None else DEFAULT_MIXTURE)
        if self.objective_weights is not None and len(self.objective_weights) == len(specs):
            for spec, weight in zip(specs, self.objective_weights):
                spec.weight = float(weight)
        return specs

    def policy_config(self) -> PolicyConfig:
        """The [`PolicyConfig`] these arguments describe: every field that names its `policy_config` setting in its
        metadata, the fixed shares as entry indices, the warm-up and the seed."""
        values = {
            setting.metadata["policy_config"]: getattr(self, setting.name)
            for setting in dataclasses.fields(self)
            if "policy_config" in setting.metadata
        }
        exploration = {
            name.split(".", 1)[1]: value for name, value in values.items() if name.startswith("exploration.")
        }
        return PolicyConfig(
            **{name: value for name, value in values.items() if "." not in name},
            exploration=ExplorationSchedule(**exploration),
            fixed_shares=self.fixed_shares(),
            warmup_steps=self.policy_warmup_steps or 0,
            seed=self.seed,
        )

    def policy_settings(self) -> dict[str, Any]:
        """Every `policy_*` setting (the mode `policy` aside) and the held-out batch size the standardised reward
        pairs examples in: what a resumed `policy="birdie"` run must match (`birdie_hf.runs.spec.birdie_run_spec`)."""
        names = [f.name for f in dataclasses.fields(self) if f.name.startswith("policy_")]
        return {name: getattr(self, name) for name in [*names, "per_device_eval_batch_size"]}

    def initial_weights(self) -> list[float]:
        """The starting mixture (normalised), one weight per entry of [`objective_specs`]."""
        specs = self.objective_specs()
        if self.objective_weights is not None and self.policy != "ntp":
            weights = [float(w) for w in self.objective_weights]
        elif self.initial_mixture == "per_objective":
            weights = per_objective_weights([s.weight for s in specs], [s.objective for s in specs])
        else:
            weights = [s.weight for s in specs]
        return with_fixed_shares(normalize_weights(weights, [s.name for s in specs]), self.fixed_shares()).tolist()

    def fixed_shares(self) -> dict[int, float]:
        """`policy_fixed_shares` as `{entry index: share}` (empty for `policy="ntp"`, which has one entry)."""
        if not self.policy_fixed_shares or self.policy == "ntp":
            return {}
        specs = self.objective_specs()
        return resolve_fixed_shares(self.policy_fixed_shares, [s.name for s in specs], [s.objective for s in specs])

    def policy_schedule(self, max_steps: int) -> tuple[int, int, list[int]]:
        """`(warmup_steps, interval, evaluation_steps)` for a run of `max_steps` optimizer steps: Birdie's schedule
        ([`~birdie_hf.policy.evaluation_schedule`]) with `policy_warmup_steps` and `policy_eval_interval`."""
        return evaluation_schedule(max_steps, self.policy_warmup_steps, self.policy_eval_interval).as_tuple()


def as_birdie_training_args(args: TrainingArguments) -> BirdieTrainingArguments:
    """[`BirdieTrainingArguments`] holding every setting of plain `args`, with the Birdie fields at their defaults.

    Where `args` holds the `TrainingArguments` default of a field whose default `BirdieTrainingArguments` changes
    (listed in its note, e.g. `label_names` and `logging_steps`), the Birdie default is used, so the result equals
    `BirdieTrainingArguments` built from the same explicit settings. Fields of a `TrainingArguments` subclass that
    `BirdieTrainingArguments` lacks are dropped with a warning.

    Raises:
        `TypeError`: `args` is not a `TrainingArguments`.
    """
    if not isinstance(args, TrainingArguments):
        raise TypeError(
            f"`args` must be BirdieTrainingArguments (or transformers.TrainingArguments), got {type(args).__name__}."
        )
    birdie_fields = {f.name: f for f in dataclasses.fields(BirdieTrainingArguments) if f.init}
    plain_defaults = {f.name: _field_default(f) for f in dataclasses.fields(TrainingArguments) if f.init}
    values, dropped = {}, []
    for f in dataclasses.fields(args):
        if not f.init:
            continue
        if f.name not in birdie_fields:
            dropped.append(f.name)
            continue
        value = getattr(args, f.name)
        birdie_default = _field_default(birdie_fields[f.name])
        if f.name in plain_defaults and birdie_default != plain_defaults[f.name] and value == plain_defaults[f.name]:
            value = birdie_default
        values[f.name] = value
    if dropped:
        logger.warning(
            "BirdieTrainer ignores the %s fields %s (not BirdieTrainingArguments fields).",
            type(args).__name__,
            dropped,
        )
    return BirdieTrainingArguments(**values)


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default
