"""When the reward policy measures: Birdie's evaluation schedule for a run of a given length."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


#: Birdie's warm-up for runs of at least `LONG_RUN_STEPS` optimizer steps (the paper's 250).
BIRDIE_WARMUP_STEPS = 250
LONG_RUN_STEPS = 8000
#: Birdie's first evaluation step (its `w / 25` for `w = 250`): the early evaluations `w / 25` and `w / 5` of a
#: shorter warm-up that fall before it are left out. Their losses are those of a model a few steps old, whose every
#: objective improves by the most it ever will (each interval's rewards at their cap), and at the README's 300-step run
#: they were 2 of its 12 held-out measurements.
FIRST_EVALUATION_STEP = 10


@dataclass(frozen=True)
class EvaluationSchedule:
    """The steps at which the policy evaluates the held-out set and may change the mixture.

    Args:
        warmup_steps (`int`): steps on the initial mixture (`w`); the policy keeps the mixture before this step.
        interval (`int`): steps between evaluations once the schedule is steady.
        steps (`tuple[int, ...]`): every evaluation step, ascending, none after the run's last step.
    """

    warmup_steps: int
    interval: int
    steps: tuple[int, ...]

    def as_tuple(self) -> tuple[int, int, list[int]]:
        """`(warmup_steps, interval, steps)`, as `BirdieTrainingArguments.policy_schedule` returns it."""
        return self.warmup_steps, self.interval, list(self.steps)


def evaluation_schedule(
    max_steps: int, warmup_steps: Optional[int] = None, eval_interval: Optional[int] = None
) -> EvaluationSchedule:
    """Birdie's evaluation schedule for a run of `max_steps` optimizer steps.

    In units of the warm-up `w`: evaluations at `w/25`, `w/5` and `w` on the initial mixture (Birdie: 10, 50, 250;
    those of `w/25` and `w/5` that fall before step 10, [`FIRST_EVALUATION_STEP`], are left out), then at `2w, 4w, 6w,
    8w` and every `4w` after that (500, 1000, 1500, 2000, then every 1000). `w` is 250 for runs of at least 8,000 steps
    and `max_steps // 32` (at least 10) for shorter ones, so a short run still gets about ten decisions. An explicit
    `eval_interval` replaces the steps after the warm-up by a fixed interval.

    Args:
        max_steps (`int`): optimizer steps of the run.
        warmup_steps (`int`, *optional*): `w`; defaults as above.
        eval_interval (`int`, *optional*): a fixed interval after the warm-up instead of Birdie's.

    Example:

    ```python
    >>> evaluation_schedule(320).as_tuple()
    (10, 40, [10, 20, 40, 60, 80, 120, 160, 200, 240, 280, 320])
    >>> evaluation_schedule(100, warmup_steps=60, eval_interval=30).steps
    (12, 60, 90)
    >>> evaluation_schedule(10_000).steps[:5]
    (10, 50, 250, 500, 1000)

    ```
    """
    for name, value in (("warmup_steps", warmup_steps), ("eval_interval", eval_interval)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")
    warmup = warmup_steps or (BIRDIE_WARMUP_STEPS if max_steps >= LONG_RUN_STEPS else max(10, max_steps // 32))
    steps = {step for step in (warmup // 25, warmup // 5) if step >= FIRST_EVALUATION_STEP} | {warmup}
    if eval_interval:
        interval = eval_interval
        steps.update(range(warmup, max_steps + 1, interval))
    else:
        interval = 4 * warmup
        steps.update(k * warmup for k in (2, 4, 6, 8))
        steps.update(range(8 * warmup, max_steps + 1, interval))
    return EvaluationSchedule(warmup, interval, tuple(sorted(s for s in steps if s <= max_steps)))
