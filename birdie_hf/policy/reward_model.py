"""The reward model: predicts each entry's reward from the current losses and a candidate mixture."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn


class RewardModel(nn.Module):
    """An MLP mapping `[per-entry losses, mixture]` (shape `(batch, 2 * num_entries)`) to a predicted reward per
    entry (shape `(batch, num_entries)`, squashed into `(-1, 1)` like the rewards).

    Args:
        num_entries (`int`): mixture entries.
        hidden_size (`int`, *optional*, defaults to `256`).
        num_layers (`int`, *optional*, defaults to `4`): hidden layers.
    """

    def __init__(self, num_entries: int, hidden_size: int = 256, num_layers: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        width = 2 * num_entries
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.GELU()]
            width = hidden_size
        layers.append(nn.Linear(width, num_entries))
        self.net = nn.Sequential(*layers)

    def forward(self, losses: torch.Tensor, mixtures: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([losses, mixtures], dim=-1)))


def fit_reward_model(
    model: RewardModel,
    optimizer: torch.optim.Optimizer,
    states: Sequence[np.ndarray],
    actions: Sequence[np.ndarray],
    rewards: Sequence[np.ndarray],
    iterations: int,
    show_progress: bool = False,
) -> float:
    """Train `model` by MSE on the whole history for `iterations` full-batch steps; returns the final loss."""
    losses = torch.as_tensor(np.stack(states), dtype=torch.float32)
    mixtures = torch.as_tensor(np.stack(actions), dtype=torch.float32)
    targets = torch.as_tensor(np.stack(rewards), dtype=torch.float32)
    model.train()
    loss = torch.zeros(())
    steps = range(iterations)
    if show_progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="Birdie reward model", leave=False)
    for _ in steps:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(losses, mixtures), targets)
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())
