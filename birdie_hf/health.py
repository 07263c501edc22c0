"""Training health: is the model reading its input, or predicting the base composition at every position?

A DNA language model can fail silently: every position carries nearly the same hidden vector, the logits ignore the
input, and the loss sits at the entropy of the base composition (about 1.38 nats on bacterial DNA) instead of falling
below it. The loss curve of such a run looks flat but plausible, and its model card read like any other's until these
readings were recorded. Two cheap readings on a few fixed held-out windows tell it apart:

- the **held-out next-base loss** (the windows read left to right, no prompt) against the **composition loss** of
  the same targets (the entropy of their base counts: the least any model that ignores its input can score there);
  a model that learned anything from context is below it;
- the **constant fraction** after the first decoder layer, `||mean_t h_t||^2 / mean_t ||h_t||^2` per window (1.0:
  every position carries the same vector; a model that reads its input keeps it well below).

A reading is *collapsed* when both say the input is ignored (next-base loss at the composition, constant fraction at
least [`COLLAPSED_FRACTION`]), the failure of the pre-registered experiment's tied models; *at the composition* when
the model reads its input but predicts the next base no better than the composition (a Birdie mixture that gives
next-token prediction a small share can sit there for a while); *learning* otherwise.

[`BirdieTrainer`] takes both readings at every scheduled evaluation, records them in the run's trajectory
(`health`), logs them (`health/*`), warns once when a run has not left the composition after
`health_check_fraction` of training, and `summary.md` and the model card say so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn


#: A run whose held-out next-base loss is less than this many nats below the composition loss of the same targets is
#: "at the composition". At a fifth of the pre-registered experiment's schedule, collapsed runs read gains of -0.010
#: to -0.001 nats and runs that learn +0.005 to +0.063 (64 runs; benchmarks/README.md, "Training health").
AT_COMPOSITION_MARGIN = 0.005
#: A reading at the composition whose constant fraction is at least this is collapsed: every position carries one
#: vector. Collapsed runs of the experiment read 0.9991-1.0000; runs that learn 0.38-0.98, tied ones included.
COLLAPSED_FRACTION = 0.99

#: What a user can change when a run collapses (the measured escapes; benchmarks/README.md, "Training health").
ADVICE = (
    "untied input and output embeddings (the default for new models; --tie_word_embeddings false), a longer "
    "learning-rate warm-up (--warmup_steps 0.1, a tenth of the run) or a lower --learning_rate"
)
#: What a user can change when a run reads its input but does not learn next-base prediction.
SLOW_ADVICE = (
    "if next-token prediction has a small share of the mixture this can take longer; if it lasts, give it a fixed "
    "share (--policy_fixed_shares next_token_prediction=0.5) or lower --learning_rate"
)


@dataclass
class HealthReading:
    """One health reading of a model on the fixed held-out windows.

    Attributes:
        step (`int`): optimizer step of the reading.
        next_base_loss (`float`): mean next-base negative log-likelihood (nats) of the windows read left to right.
        composition_loss (`float`): entropy (nats) of the base counts of the same targets.
        constant_fraction (`float`): mean over windows of `||mean_t h_t||^2 / mean_t ||h_t||^2` after the first
            decoder layer, in `[0, 1]`.
    """

    step: int
    next_base_loss: float
    composition_loss: float
    constant_fraction: float

    @property
    def gain(self) -> float:
        """Nats by which the model beats the composition (`composition_loss - next_base_loss`)."""
        return self.composition_loss - self.next_base_loss

    @property
    def at_composition(self) -> bool:
        """Whether the model predicts no better than the composition (`gain < AT_COMPOSITION_MARGIN`)."""
        return self.gain < AT_COMPOSITION_MARGIN

    @property
    def collapsed(self) -> bool:
        """Whether the model ignores its input: at the composition with one vector at every position."""
        return self.at_composition and self.constant_fraction >= COLLAPSED_FRACTION

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gain": self.gain, "at_composition": self.at_composition, "collapsed": self.collapsed}


def constant_fraction(hidden: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """How much of each row's hidden states is one shared vector: `||mean_t h_t||^2 / mean_t ||h_t||^2`.

    Args:
        hidden (`torch.Tensor` of shape `(rows, length, dim)`): hidden states.
        mask (`torch.Tensor` of shape `(rows, length)`, *optional*): `True` on the positions to include.

    Returns:
        `torch.Tensor` of shape `(rows,)` in `[0, 1]`: 1 when every position carries the same vector, about
        `1 / length` for independent random vectors.
    """
    hidden = hidden.float()
    weights = torch.ones(hidden.shape[:2], device=hidden.device) if mask is None else mask.float()
    counts = weights.sum(dim=1).clamp(min=1)
    mean = (hidden * weights[..., None]).sum(dim=1) / counts[:, None]
    mean_square = (hidden.pow(2).sum(dim=-1) * weights).sum(dim=1) / counts
    return mean.pow(2).sum(dim=-1) / mean_square.clamp(min=1e-12)


def composition_entropy(targets: torch.Tensor, base_ids: Sequence[int]) -> float:
    """Entropy (nats) of the base counts of `targets`: the loss of the best predictor that ignores its input.

    Args:
        targets (`torch.Tensor`): token ids, any shape; tokens other than `base_ids` are not counted.
        base_ids (`Sequence[int]`): ids of the bases (A, C, G, T).
    """
    counts = torch.stack([(targets == i).sum() for i in base_ids]).double()
    shares = counts[counts > 0] / counts.sum().clamp(min=1)
    return float(-(shares * shares.log()).sum())


@torch.no_grad()
def measure_health(model: nn.Module, windows: torch.Tensor, base_ids: Sequence[int], step: int) -> HealthReading:
    """Read `model` on `windows` left to right: its next-base loss, the composition loss of the same targets and
    the constant fraction after the first decoder layer.

    Args:
        model (`nn.Module`): a causal LM returning `logits` and, with `output_hidden_states=True`, `hidden_states`.
        windows (`torch.Tensor` of shape `(num_windows, window_length)`): token ids of held-out windows, on the
            model's device. Only targets that are bases (`base_ids`; `N` is left out) are scored.
        base_ids (`Sequence[int]`): ids of A, C, G and T.
        step (`int`): the optimizer step, recorded in the reading.
    """
    was_training = model.training
    model.eval()
    try:
        outputs = model(input_ids=windows, use_cache=False, output_hidden_states=True)
    finally:
        model.train(was_training)
    targets = windows[:, 1:]
    scored = torch.isin(targets, torch.as_tensor(list(base_ids), device=windows.device))
    losses = nn.functional.cross_entropy(outputs.logits[:, :-1].float().transpose(1, 2), targets, reduction="none")
    next_base = float(losses[scored].mean()) if bool(scored.any()) else math.nan
    # hidden_states[0] is the embedding output, [1] the first decoder layer's.
    layer = outputs.hidden_states[1] if len(outputs.hidden_states) > 1 else outputs.hidden_states[0]
    return HealthReading(
        step=int(step),
        next_base_loss=next_base,
        composition_loss=composition_entropy(targets[scored], base_ids),
        constant_fraction=float(constant_fraction(layer).mean()),
    )


def health_warning(
    reading: HealthReading, earlier: Sequence[dict], progress: float, check_fraction: float
) -> Optional[str]:
    """The one-line warning for a run that has not left the composition after `check_fraction` of training, else
    `None`.

    Args:
        reading ([`HealthReading`]): the latest reading.
        earlier (`Sequence[dict]`): the run's earlier readings ([`HealthReading.to_dict`]); a run that was once below
            the composition has left it (one noisy reading near it later is not a collapse; [`health_summary`] judges
            the end of the run).
        progress (`float`): share of training done at the reading, in `[0, 1]`.
        check_fraction (`float`): share of training after which a run at the composition is reported.
    """
    if progress < check_fraction or not reading.at_composition or any(not r["at_composition"] for r in earlier):
        return None
    where = (
        f"Training health: at step {reading.step} ({progress:.0%} of training) the held-out next-base loss "
        f"{reading.next_base_loss:.4f} nats is still not below the composition loss {reading.composition_loss:.4f} "
        f"of the same bases"
    )
    if reading.collapsed:
        return (
            f"{where}, and every position carries nearly the same vector (layer-1 constant fraction "
            f"{reading.constant_fraction:.4f}): the model ignores its input. Try {ADVICE}."
        )
    return (
        f"{where}: the model reads its input (layer-1 constant fraction {reading.constant_fraction:.4f}) but has not "
        f"learned next-base prediction; {SLOW_ADVICE}."
    )


def health_summary(evaluations: Sequence[dict]) -> dict[str, Any]:
    """The run's health from the readings recorded in its trajectory's evaluations (`evaluation["health"]`).

    Returns:
        `dict` with `status`: `"collapsed"` or `"at_composition"` when the last two readings (or the only one) are at
        the composition (collapsed when the last one is), `"learning"` otherwise (one reading near the composition
        after the run left it is noise, not a relapse), or `"not_measured"` (no reading: no held-out windows); `last`
        (the last reading as a dict, or `None`); `first_below` (the first step whose reading was below the
        composition, or `None`).
    """
    readings = [e["health"] for e in evaluations if e.get("health")]
    if not readings:
        return {"status": "not_measured", "last": None, "first_below": None}
    below = [r["step"] for r in readings if not r["at_composition"]]
    status = "learning"
    if all(r["at_composition"] for r in readings[-2:]):
        collapsed = readings[-1].get("collapsed", readings[-1]["constant_fraction"] >= COLLAPSED_FRACTION)
        status = "collapsed" if collapsed else "at_composition"
    return {"status": status, "last": readings[-1], "first_below": below[0] if below else None}


def health_sentence(summary: dict[str, Any]) -> str:
    """[`health_summary`] in one sentence, for `summary.md` and the model card."""
    last = summary["last"]
    if summary["status"] == "not_measured":
        return "not measured (no held-out windows)"
    figures = (
        f"held-out next-base loss {last['next_base_loss']:.4f} nats against {last['composition_loss']:.4f} for the "
        f"base composition of the same bases at step {last['step']}, layer-1 constant fraction "
        f"{last['constant_fraction']:.4f}"
    )
    if summary["status"] == "learning":
        return f"learning: below the base composition from step {summary['first_below']} ({figures})"
    what = (
        "**did not learn beyond the base composition**"
        if summary["first_below"] is None
        else f"**fell back to the base composition** (below it from step {summary['first_below']})"
    )
    if summary["status"] == "collapsed":
        return f"{what} ({figures}): every position carries the same vector, the model ignores its input. Retrain with {ADVICE}."
    return f"{what} ({figures}): the model reads its input but predicts the next base no better than the composition."


def health_failed(summary: dict[str, Any]) -> bool:
    """Whether [`health_summary`] says the run ended at the composition (collapsed or not)."""
    return summary["status"] in ("collapsed", "at_composition")
