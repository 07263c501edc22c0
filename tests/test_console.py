"""What a run prints (birdie_hf.console), driven by hand-made logs and trajectory records: no training."""

from types import SimpleNamespace

from transformers import TrainerControl, TrainerState

from birdie_hf.console import BirdiePrinterCallback, console_logs, evaluation_line, evaluation_table
from birdie_hf.mixture import LiveMixture


NAMES = ["next_token_prediction", "copying"]


def _decision(step, next_weights, kind="reward_model"):
    return {
        "step": step,
        "losses": {"next_token_prediction": 1.40, "copying": 0.90},
        "mixture": {"next_token_prediction": 0.5, "copying": 0.5},
        "next_mixture": dict(zip(NAMES, next_weights)),
        "rewards": {"next_token_prediction": 0.25, "copying": -0.5},
        "total_reward": -0.25,
        "decision": kind,
        "reason": "weight to next_token_prediction",
    }


def _printer():
    reward_callback = SimpleNamespace(trajectory=[], mixture=LiveMixture(NAMES, [0.5, 0.5]))
    return reward_callback, BirdiePrinterCallback(reward_callback)


def test_the_printer_shows_short_lines_one_line_per_evaluation_and_the_last_table(capsys):
    reward_callback, printer = _printer()
    state, control = TrainerState(), TrainerControl()
    printer.on_train_begin(None, state, control)
    printer.on_log(None, state, control, logs={"loss": 1.5, "loss/copying": 0.9, "grad_norm": 2.0, "epoch": 0.1})
    reward_callback.trajectory.append(_decision(10, [0.7, 0.3]))
    printer.on_log(None, state, control, logs={"eval_loss": 1.15, "eval_runtime": 0.5, "epoch": 0.2})
    reward_callback.trajectory.append(_decision(20, [0.6, 0.4], kind="explore"))
    printer.on_log(None, state, control, logs={"eval_loss": 1.1, "epoch": 0.3, "custom/metric": 0.5})
    printer.on_train_end(None, state, control)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "{'loss': '1.5', 'grad_norm': '2', 'epoch': '0.1'}"  # per-entry keys left to integrations
    assert lines[1] == evaluation_line(reward_callback.trajectory[0])
    assert (
        lines[1].startswith("Birdie step 10: held-out loss ")
        and "next mixture: next_token_prediction 0.700" in lines[1]
    )
    # A key the evaluation line does not say still gets its line.
    assert lines[2] == "{'eval_loss': '1.1', 'epoch': '0.3', 'custom/metric': '0.5'}"
    assert lines[3] == evaluation_line(reward_callback.trajectory[1]) and "explore" in lines[3]
    assert "\n".join(lines[4:]) == evaluation_table(reward_callback.trajectory[1])


def test_a_resumed_run_does_not_reprint_the_evaluations_it_restored(capsys):
    reward_callback, printer = _printer()
    reward_callback.trajectory.append(_decision(10, [0.7, 0.3]))  # restored from the checkpoint
    state, control = TrainerState(), TrainerControl()
    printer.on_train_begin(None, state, control)
    printer.on_log(None, state, control, logs={"loss": 1.0})
    printer.on_train_end(None, state, control)  # no evaluation in this session: no table
    assert capsys.readouterr().out.splitlines() == ["{'loss': '1'}"]


def test_only_the_main_process_prints(capsys):
    reward_callback, printer = _printer()
    state = TrainerState(is_local_process_zero=False)
    printer.on_log(None, state, TrainerControl(), logs={"loss": 1.0})
    assert capsys.readouterr().out == ""


def test_console_formatting_of_fixed_mixture_runs_and_user_keys():
    record = {
        "step": 4,
        "losses": {"copying": 3.25, "infilling_long": 3.5},
        "mixture": {"copying": 0.75, "infilling_long": 0.25},
    }
    assert evaluation_table(record).splitlines() == [
        "Birdie evaluation at step 4 (fixed mixture)",
        "  entry             loss  weight",
        "  copying         3.2500   0.750",
        "  infilling_long  3.5000   0.250",
    ]
    logs = {
        "loss": 3.0,
        "loss/copying": 2.0,
        "mixture/copying": 0.5,
        "custom/accuracy": 0.25,
        "policy/explored": 1.0,
        "reward/total": 0.5,
        "num_input_tokens_seen": 100,
        "total_flos": 1.0,
        "epoch": 0.5,
    }
    assert console_logs(logs, ["copying", "infilling_long"]) == {
        "loss": "3",
        "custom/accuracy": "0.25",
        "epoch": "0.5",
    }
    assert len(logs) == 9  # not modified
    assert console_logs({"next_mixture/copying": 1.0, "epoch": 0.5}, ["copying"]) == {}
