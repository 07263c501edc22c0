"""A training run's bookkeeping, apart from training itself: the folder it owns (`folder`), its checkpoints'
integrity (`checkpoints`) and the settings that define it (`spec`). Imports nothing of training."""

from .checkpoints import BIRDIE_STATE_NAME, checkpoint_problems, last_complete_checkpoint
from .folder import FINETUNING, PRETRAINING, OutputDirInUseError, OutputDirLock, claim_output_dir
from .spec import birdie_run_spec, run_spec_differences


__all__ = [
    "BIRDIE_STATE_NAME",
    "FINETUNING",
    "PRETRAINING",
    "OutputDirInUseError",
    "OutputDirLock",
    "birdie_run_spec",
    "checkpoint_problems",
    "claim_output_dir",
    "last_complete_checkpoint",
    "run_spec_differences",
]
