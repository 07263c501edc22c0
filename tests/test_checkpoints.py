"""Checkpoints of `BirdieTrainer`: what is written when, what counts as complete, and what resuming accepts."""

import logging

import numpy as np
import pytest
import torch

from birdie_hf import BirdieRewardCallback, LiveMixture


def test_state_without_run_spec_is_checked_on_what_it_has(caplog):
    names = ["next_token_prediction", "copying"]
    saved = BirdieRewardCallback(LiveMixture(names, [0.7, 0.3])).state_dict()
    del saved["run_spec"]
    callback = BirdieRewardCallback(LiveMixture(names, [0.5, 0.5]), run_spec={"policy": "static"})
    with caplog.at_level(logging.WARNING, logger="birdie_hf.callback"):
        callback.load_state_dict(saved)
    assert "predates recorded run settings" in caplog.text
    np.testing.assert_allclose(callback.mixture.weights, [0.7, 0.3])
    saved["entry_names"] = ["next_token_prediction", "prefix_lm"]
    with pytest.raises(ValueError, match="mixture entries"):
        callback.load_state_dict(saved)



def test_numpy_values_are_saved_as_plain_values(tmp_path):
    callback = BirdieRewardCallback(LiveMixture(["a", "b"], [0.5, 0.5]))
    callback.pending, callback.pending_step = np.array([0.25, 0.75]), np.int64(3)
    callback.trajectory.append({"step": np.int64(3), "losses": {"a": np.float32(1.5)}, "curve": np.arange(3)})
    torch.save(callback.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["pending"] == [0.25, 0.75] and state["pending_step"] == 3
    assert state["trajectory"] == [{"step": 3, "losses": {"a": 1.5}, "curve": [0, 1, 2]}]
    callback.trajectory.append({"when": object()})
    with pytest.raises(TypeError, match=r"state\['trajectory'\]\[1\]\['when'\] is a object"):
        callback.state_dict()
