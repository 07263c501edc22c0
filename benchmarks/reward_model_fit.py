"""How well, and at what cost, reward models of several sizes fit the reward histories of real Birdie runs.

Each recorded run (`mixture_trajectory.json`) is replayed as `BirdiePolicy` fits its reward model: after every interval
the model is refitted, warm-started, on the whole history so far (losses at the interval's start, the mixture trained
on, the rewards measured), with the policy's optimiser, for a number of iterations. Printed per configuration: the
fit's mean squared error after each refit, relative to the variance of all the run's rewards (about 1.0: no better
than predicting their mean; lower is better), averaged over the refits from the third on, and the seconds per refit
(one thread, as the policy fits). Baseline: the paper's size, GRU 256 x 4, fitted for the paper's 200 iterations, in
the same run.

    python benchmarks/reward_model_fit.py                                    # the committed histories
    python benchmarks/reward_model_fit.py --trajectories outputs/birdie-dna-tiny/mixture_trajectory.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from birdie_hf.policy.policy import reward_model_optimizer
from birdie_hf.policy.reward_model import RewardModel, fit_reward_model, normalize_losses, normalize_mixtures


RESULTS = Path(__file__).resolve().parent / "results"
#: Histories of real runs committed with their results (13 entries each): the README's default run with the paper's
#: reward (policy comparison, 11 intervals) and with the standardised reward (reward calibration, 11 intervals), and
#: the README's main job under the dna preset's defaults of commit 3d1fc6b (no gate; 9 intervals).
DEFAULT_TRAJECTORIES = [
    RESULTS / "policy_comparison_birdie_trajectory.json",
    RESULTS / "reward_calibration_standardised_trajectory.json",
    RESULTS / "main_job_dna_default_trajectory.json",
]
#: (hidden size, GRU layers, iterations per refit); the first is the baseline.
CONFIGURATIONS = [(256, 4, 200), (256, 4, 50), (128, 2, 50), (64, 2, 50), (64, 2, 100)]


def history(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(states, actions, rewards) of every rewarded interval of a recorded run, as `BirdiePolicy` stored them."""
    trajectory = json.loads(path.read_text())
    names, evaluations = trajectory["entries"], trajectory["evaluations"]
    states, actions, rewards = [], [], []
    for before, after in zip(evaluations, evaluations[1:]):
        if not after.get("rewards"):
            continue
        action = before.get("next_mixture") or after["mixture"]
        states.append(np.array([before["losses"][n] for n in names]))
        actions.append(np.array([action[n] for n in names]))
        rewards.append(np.array([after["rewards"][n] for n in names]))
    return states, actions, rewards


def replay(states, actions, rewards, hidden: int, layers: int, iterations: int, seed: int = 0) -> tuple[float, float]:
    """Mean fit error over the refits from the third on, relative to the variance of the run's rewards, and seconds
    per refit."""
    torch.manual_seed(seed)
    model = RewardModel(len(states[0]), hidden, layers)
    optimizer = reward_model_optimizer(model.parameters(), 5e-4, 0.1)
    relative, seconds = [], 0.0
    variance = float(np.var(np.stack(rewards)))  # over the whole run: early histories can hold equal rewards only
    for t in range(1, len(states) + 1):
        normalised = normalize_losses(np.stack(states[:t]), states[0])
        mixtures = normalize_mixtures(np.stack(actions[:t]))
        start = time.perf_counter()
        error = fit_reward_model(model, optimizer, list(normalised), list(mixtures), rewards[:t], iterations)
        seconds += time.perf_counter() - start
        if t >= 3:
            relative.append(error / variance)
    return float(np.mean(relative)), seconds / len(states)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", nargs="+", type=Path, default=DEFAULT_TRAJECTORIES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {path.name: history(path) for path in args.trajectories}
    rows = []
    for hidden, layers, iterations in CONFIGURATIONS:
        errors, seconds = zip(*(replay(*run, hidden, layers, iterations) for run in runs.values()))
        rows.append((hidden, layers, iterations, errors, float(np.mean(seconds))))
    baseline = rows[0][4]
    names = " | ".join(f"fit error / reward variance, {name}" for name in runs)
    print(f"| reward model | iterations per refit | {names} | s per refit | vs 256 x 4, 200 iterations |")
    print("|---|---|" + "---|" * len(runs) + "---|---|")
    for hidden, layers, iterations, errors, seconds in rows:
        cells = " | ".join(f"{e:.3f}" for e in errors)
        print(f"| GRU {hidden} x {layers} | {iterations} | {cells} | {seconds:.3f} | {seconds / baseline:.2f}x |")


if __name__ == "__main__":
    main()
