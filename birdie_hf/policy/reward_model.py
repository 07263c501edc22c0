"""The reward model: predicts each entry's reward from the history of (losses, mixture) and a candidate mixture."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


def normalize_losses(losses: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale-free loss features: `log(losses / reference)` per entry, shape like `losses`.

    `reference` is the first observed loss vector, so an entry with loss 0.1 and one with loss 3.0 both start at 0 and
    move by their relative change: the reward itself is a function of relative change.
    """
    return np.log(np.maximum(losses, 1e-8) / np.maximum(reference, 1e-8))


def normalize_mixtures(mixtures: np.ndarray) -> np.ndarray:
    """Mixture features: `num_entries * weight - 1` (0 for a uniform mixture), shape like `mixtures`."""
    return mixtures * mixtures.shape[-1] - 1.0


class RewardModel(nn.Module):
    """A recurrent reward model over the policy's history, as in Birdie (which uses a gated SSM over the history).

    At interval `t` the input is `[normalised losses at the start of t, normalised mixture used during t]`, the two
    blocks normalised separately (fixed scaling, then a LayerNorm each); a GRU carries the history, and a linear head
    predicts the reward of every entry for interval `t`. The head is not squashed: rewards often sit at their clip
    value (+1 early in training), and a `tanh` output fitted to them saturates and stops learning when they later
    fall. Candidate scores are clipped to the rewards' range `[-1, 1]`.

    Args:
        num_entries (`int`): mixture entries.
        hidden_size (`int`, *optional*, defaults to `256`).
        num_layers (`int`, *optional*, defaults to `4`): GRU layers.

    Shapes:
        `forward(losses, mixtures)`: both `(batch, time, num_entries)` (already normalised, see
        [`normalize_losses`] and [`normalize_mixtures`]) -> predicted rewards `(batch, time, num_entries)`.
    """

    def __init__(self, num_entries: int, hidden_size: int = 256, num_layers: int = 4):
        super().__init__()
        self.num_entries = num_entries
        self.loss_norm = nn.LayerNorm(num_entries)
        self.mixture_norm = nn.LayerNorm(num_entries)
        self.input = nn.Linear(2 * num_entries, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, num_entries))
        # Predict "no reward" until the history says otherwise: with a random last layer, candidates far from
        # anything observed would get arbitrary predictions of the size of the noise floor.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _embed(self, losses: torch.Tensor, mixtures: torch.Tensor) -> torch.Tensor:
        # The raw features keep their scale next to the normalised ones: a LayerNorm of one active feature would
        # erase how large the change was.
        features = torch.cat([losses + self.loss_norm(losses), mixtures + self.mixture_norm(mixtures)], dim=-1)
        return nn.functional.gelu(self.input(features))

    def forward(
        self, losses: torch.Tensor, mixtures: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> torch.Tensor:
        output, _ = self.rnn(self._embed(losses, mixtures), hidden)
        return self.head(output)

    @torch.no_grad()
    def score_candidates(
        self,
        history_losses: torch.Tensor,
        history_mixtures: torch.Tensor,
        losses: torch.Tensor,
        candidates: torch.Tensor,
    ) -> torch.Tensor:
        """Predicted rewards of each candidate mixture for the next interval.

        Args:
            history_losses, history_mixtures (`torch.Tensor` of shape `(time, num_entries)`): the past intervals
                (normalised); `time` may be 0.
            losses (`torch.Tensor` of shape `(num_entries,)`): the current losses (normalised).
            candidates (`torch.Tensor` of shape `(num_candidates, num_entries)`): normalised candidate mixtures.

        Returns:
            `torch.Tensor` of shape `(num_candidates, num_entries)`, in `[-1, 1]`.
        """
        hidden = None
        if history_losses.shape[0] > 0:
            _, hidden = self.rnn(self._embed(history_losses[None], history_mixtures[None]))
            hidden = hidden.expand(-1, candidates.shape[0], -1).contiguous()
        step_losses = losses.expand(candidates.shape[0], -1)[:, None]
        output, _ = self.rnn(self._embed(step_losses, candidates[:, None]), hidden)
        return self.head(output[:, 0]).clamp(-1.0, 1.0)


def fit_reward_model(
    model: RewardModel,
    optimizer: torch.optim.Optimizer,
    states: Sequence[np.ndarray],
    actions: Sequence[np.ndarray],
    rewards: Sequence[np.ndarray],
    iterations: int,
) -> float:
    """Train `model` by MSE on the whole history (one sequence) for `iterations` steps; returns the final loss.

    Args:
        states (`Sequence[np.ndarray]`): losses at the start of each interval (normalised), each `(num_entries,)`.
        actions (`Sequence[np.ndarray]`): mixture of each interval (normalised).
        rewards (`Sequence[np.ndarray]`): measured reward of each interval.
    """
    losses = torch.as_tensor(np.stack(states), dtype=torch.float32)[None]
    mixtures = torch.as_tensor(np.stack(actions), dtype=torch.float32)[None]
    targets = torch.as_tensor(np.stack(rewards), dtype=torch.float32)[None]
    model.train()
    loss = torch.zeros(())
    for _ in range(iterations):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(losses, mixtures), targets)
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())
