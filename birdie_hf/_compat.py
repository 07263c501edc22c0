"""Every version workaround and private transformers hook birdie_hf relies on, in one place.

Each entry says what it works around and which version retires it. When `setup.py`'s floor passes that version,
delete the workaround here and its one call site. The floor is `transformers>=5.2`.

Version workarounds (functions below):

| workaround | where it is used | retired when the floor reaches |
|---|---|---|
| [`load_optimizer_on_cpu`]: load the optimizer/scheduler state onto the CPU in a multi-process CPU resume (< 5.18 maps it to `cpu:0`, which torch cannot restore) | `BirdieTrainer._load_optimizer_and_scheduler` | transformers 5.18 |
| [`cache_argument`]: the key/value cache argument of `forward` is `cache` in newer 5.x releases, `past_key_values` before | `birdie_hf.inference.decoding` | the release that renamed it (then always `cache`) |
| [`reset_accelerate_loss_scaling`]: some releases (5.2 among them) also hand `num_steps` to accelerate, which would divide each micro-batch's loss a second time | `BirdieTrainer.create_accelerator_and_postprocess` | the first release that no longer does (not yet identified; harmless when it does not apply) |
| [`TRAINER_COUNTS_TOKENS_INLINE`]: older releases (5.2 among them) count `num_input_tokens_seen` inline in the training loop with an `.item()` per micro-step, where `BirdieTrainer` cannot defer it (newer ones call `Trainer._track_num_input_tokens`, which it overrides); the only host synchronisation left in a step there | `tests/test_fast_path.py` | the first release with `_track_num_input_tokens` (not yet identified) |
| [`escape_percent_signs_in_help`]: bare `%` in some releases' `TrainingArguments` help strings (5.2) crash argparse's `--help` | `birdie_hf.cli.parse_args_with_config` | the first release without them (harmless otherwise) |

Retired: the check that refused bidirectional classifiers under transformers < 5.2 (whose Llama ignores
`config.is_causal = False`); the floor is 5.2, so it could never fire.

Private `transformers.Trainer` hooks that `BirdieTrainer` overrides or calls (not public API; re-check on every
transformers upgrade, `tests/test_trainer.py` and `tests/test_checkpoints.py` exercise each):
`_load_optimizer_and_scheduler`, `_save_checkpoint`, `_save_rng_state`, `_load_from_checkpoint`, `_prepare_inputs`,
`_get_output_dir`, `_track_num_input_tokens` where it exists (see [`PRIVATE_TRAINER_HOOKS`]).
"""

from __future__ import annotations

import inspect
import re

import transformers
from packaging import version


#: First transformers release whose Llama honours `config.is_causal = False` (5.0 and 5.1 silently stay causal); it is
#: `setup.py`'s floor, so bidirectional classifiers need no run-time check.
MIN_TRANSFORMERS_FOR_BIDIRECTIONAL = "5.2.0"

#: The installed transformers release.
TRANSFORMERS_VERSION = version.parse(transformers.__version__)

#: Private `Trainer` methods `BirdieTrainer` overrides or calls.
PRIVATE_TRAINER_HOOKS = (
    "_load_optimizer_and_scheduler",
    "_save_checkpoint",
    "_save_rng_state",
    "_load_from_checkpoint",
    "_prepare_inputs",
    "_get_output_dir",
)

#: Whether the installed `Trainer` counts `num_input_tokens_seen` inline in its loop (an `.item()` per micro-step that
#: `BirdieTrainer` cannot defer) instead of calling `_track_num_input_tokens`, which `BirdieTrainer` overrides to read
#: the count at logging steps only.
TRAINER_COUNTS_TOKENS_INLINE = not hasattr(transformers.Trainer, "_track_num_input_tokens")


def transformers_before(release: str) -> bool:
    """Whether the installed transformers is older than `release` (e.g. `"5.18"`)."""
    return TRANSFORMERS_VERSION < version.parse(release)


def load_optimizer_on_cpu(world_size: int, device_type: str, sharded: bool) -> bool:
    """Whether a resume must load the plain optimizer/scheduler files onto the CPU itself: transformers < 5.18 loads
    them with `map_location=args.device`, which in a multi-process CPU run is `cpu:0`, and every two-process CPU
    resume crashed. `sharded` (DeepSpeed / FSDP) runs keep transformers' own loading. Retired by transformers 5.18."""
    return transformers_before("5.18") and world_size > 1 and device_type == "cpu" and not sharded


def cache_argument(model) -> str:
    """Name of the key/value cache argument of `model.forward`: `cache` where transformers renamed it, else
    `past_key_values`."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def reset_accelerate_loss_scaling(accelerator) -> None:
    """`Trainer` accumulates gradients itself and `BirdieTrainer.compute_loss` already divides by the loss-bearing
    tokens of the whole accumulated batch; some transformers releases (5.2 among them) also hand `num_steps` to
    accelerate, whose `backward` would divide every micro-batch's loss a second time. Keep accelerate's at 1."""
    if accelerator.gradient_accumulation_steps != 1:
        accelerator.gradient_accumulation_steps = 1


def escape_percent_signs_in_help(parser) -> None:
    """argparse %-formats every help string for `--help`; a bare `%` in a field's help (transformers 5.2's
    `TrainingArguments` has some) makes `--help` crash with "incomplete format". Escape those in place."""
    for action in parser._actions:
        if isinstance(action.help, str) and "%" in action.help:
            try:
                action.help % {**vars(action), "prog": parser.prog}
            except (ValueError, TypeError, KeyError):
                action.help = re.sub(r"%(?![(%])", "%%", action.help)  # keep %(default)s and %%
