"""The training step on the GPU fast path: no host synchronisation inside a step, one batch shape, the same losses."""

import traceback

import numpy as np
import pytest
import torch
from testing_utils import MIXTURE, make_trainer
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import TrainerCallback

from birdie_hf import BirdieTrainingArguments, DataCollatorForBirdie
from birdie_hf._compat import TRAINER_COUNTS_TOKENS_INLINE


#: Operators that make the host wait for the device: reading a value (`.item()`, `bool(tensor)`, `.tolist()`), and
#: those whose output size depends on the data (the kernels must finish before the size is known).
SYNCHRONISING_OPS = {"aten::_local_scalar_dense", "aten::is_nonzero", "aten::nonzero", "aten::masked_select",
                     "aten::equal", "aten::item", "aten::unique_consecutive", "aten::_unique2"}  # fmt: skip


class SyncRecorder(TorchDispatchMode):
    """Records every synchronising operator dispatched while active (with where it was called). On a CPU nothing
    waits, but the same operators on CUDA would: this is the CUDA-free stand-in for `torch.cuda.set_sync_debug_mode`.
    Boolean-mask indexing (`tensor[mask]`) counts too: it is a `nonzero` inside one kernel."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        boolean_index = name.startswith("aten::index") and any(
            isinstance(index, torch.Tensor) and index.dtype == torch.bool
            for arg in args
            if isinstance(arg, (list, tuple))
            for index in arg
        )
        if name in SYNCHRONISING_OPS or boolean_index:
            where = next(
                (f"{frame.filename}:{frame.lineno} {frame.name}" for frame in reversed(traceback.extract_stack()[:-1])
                 if "birdie_hf" in frame.filename or "transformers" in frame.filename),
                "?",
            )  # fmt: skip
            self.calls.append(f"{name} at {where}")
        return func(*args, **(kwargs or {}))


class RecordStepSyncs(TrainerCallback):
    """Turns the recorder on from the start of each optimizer step to its end: forward, loss, accounting, backward,
    clipping and the optimizer (fused AdamW). Logging steps fall outside: they read the sums on purpose."""

    def __init__(self):
        self.recorder, self.steps = SyncRecorder(), 0

    def on_step_begin(self, args, state, control, **kwargs):
        self.recorder.__enter__()

    def on_step_end(self, args, state, control, **kwargs):
        self.recorder.__exit__(None, None, None)
        self.steps += 1


@pytest.mark.parametrize(
    "loss_averaging, tokens", [("token", "non_padding"), ("example", "non_padding"), ("token", "all")]
)
def test_a_training_step_never_waits_for_the_device(tokenizer, genome, tmp_path, loss_averaging, tokens):
    trainer = make_trainer(
        tokenizer, genome, tmp_path, policy="static", max_steps=4, logging_steps=2, loss_averaging=loss_averaging,
        gradient_accumulation_steps=2, max_grad_norm=1.0, include_num_input_tokens_seen=tokens,
    )  # fmt: skip
    recorder = RecordStepSyncs()
    trainer.add_callback(recorder)
    shapes = []
    compute_loss = trainer.compute_loss

    def recording_compute_loss(model, inputs, *args, **kwargs):
        if model.training:
            shapes.append(inputs["input_ids"].numel())
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = recording_compute_loss
    trainer.train()
    assert recorder.steps == 4 and len(shapes) == 8
    # Older transformers (5.2) count tokens inline in their loop, with one `.item()` per micro-step we cannot defer.
    ours = [
        call
        for call in recorder.recorder.calls
        if not (TRAINER_COUNTS_TOKENS_INLINE and "_inner_training_loop" in call)
    ]
    assert ours == []
    # The counts read at the logging steps are exact: every token through the model is counted once.
    compute = trainer.mixture_trajectory()["compute"]
    if tokens == "non_padding":
        assert compute["model_tokens"] == trainer.state.num_input_tokens_seen > 0
    else:  # padding included
        assert trainer.state.num_input_tokens_seen == sum(shapes) > compute["model_tokens"]
    # Evaluation logs carry the exact count too.
    evaluations = [logs for logs in trainer.state.log_history if "eval_loss" in logs]
    assert evaluations and all("num_input_tokens_seen" in logs for logs in evaluations)


def test_the_recorder_sees_what_transformers_own_counter_does(tokenizer, genome, tmp_path):
    """The test above would catch a regression: transformers' token counter (`.item()` per micro-step) and its
    non-finite filter (`bool(isnan)` per micro-step) are seen."""
    trainer = make_trainer(tokenizer, genome, tmp_path, policy="static", max_steps=2, logging_nan_inf_filter=True)
    trainer._track_num_input_tokens = lambda inputs: type(trainer).__mro__[1]._track_num_input_tokens(trainer, inputs)
    recorder = RecordStepSyncs()
    trainer.add_callback(recorder)
    trainer.train()
    calls = recorder.recorder.calls
    counter = "_inner_training_loop" if TRAINER_COUNTS_TOKENS_INLINE else "_track_num_input_tokens"
    assert any(counter in call for call in calls)
    assert any("is_nonzero" in call or "_local_scalar_dense" in call for call in calls)


def _features(tokenizer, count=6, length=150, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"input_ids": tokenizer("".join(rng.choice(list("ACGT"), length)), add_special_tokens=False)["input_ids"]}
        for _ in range(count)
    ]


def test_an_epochs_last_smaller_batch_gets_a_full_batchs_shape(tokenizer):
    collator = DataCollatorForBirdie(
        tokenizer, objectives=MIXTURE, max_length=320, example_length=160, static_shapes=True, static_batch_windows=8
    )
    assert collator(_features(tokenizer, count=8))["input_ids"].shape == (4, 320)
    assert collator(_features(tokenizer, count=3, seed=1))["input_ids"].shape == (4, 320)  # the last, partial batch


def test_static_shapes_give_every_batch_one_shape_and_keep_its_content(tokenizer):
    settings = dict(objectives=MIXTURE, max_length=320, example_length=160, seed=3)
    plain = DataCollatorForBirdie(tokenizer, **settings)
    static = DataCollatorForBirdie(tokenizer, static_shapes=True, **settings)
    for seed, count in ((0, 6), (1, 5), (2, 1)):
        features = _features(tokenizer, count=count, length=100 + 30 * seed, seed=seed)
        a, b = plain(features), static(features)
        assert b["input_ids"].shape == (-(-count // 2), 320)  # ceil(windows / 2 examples per row), full rows
        rows, width = a["input_ids"].shape
        for key in a:
            assert torch.equal(b[key][:rows, :width], a[key]), key
        # Everything added is padding: no targets, no entry, its own segment.
        assert (b["labels"][:, width:] == -100).all() and (b["labels"][rows:] == -100).all()
        assert (b["objective_ids"][rows:] == -1).all() and (b["segment_ids"][:, width:] == -1).all()


@pytest.mark.parametrize("loss_averaging", ["token", "example"])
def test_static_shapes_keep_the_loss_and_its_counts(tokenizer, genome, tmp_path, loss_averaging):
    trainer = make_trainer(tokenizer, genome, tmp_path, policy="static", loss_averaging=loss_averaging)
    features = _features(tokenizer, count=4, length=150)
    collator = trainer.data_collator
    plain = collator(features)
    collator.static_shapes = True
    static = collator(features)
    assert static["input_ids"].shape[1] == collator.max_length
    model = trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop
    losses = []
    for batch in (plain, static):
        with torch.no_grad():
            losses.append(
                trainer.compute_loss(model, batch, num_items_in_batch=(batch["labels"][:, 1:] != -100).sum())
            )
    assert torch.allclose(losses[0], losses[1], atol=1e-6)
    # The accounting saw each batch's tokens once, the padding of neither.
    tokens, _, windows = trainer._entry_counts.sum(dim=1).tolist()
    assert tokens == 2 * (plain["objective_ids"] >= 0).sum() and windows == 2 * len(features)


def test_fast_path_auto_is_off_on_a_cpu_and_on_means_its_parts(tmp_path):
    args = BirdieTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert args.fast_path == "off" and not args.torch_compile and not args.accelerator_config.non_blocking
    assert args.logging_nan_inf_filter is False  # it waits for the device every step
    on = BirdieTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", fast_path="on")
    assert on.torch_compile and on.torch_compile_backend == "inductor" and on.accelerator_config.non_blocking
    assert not on.bf16  # bf16 only where a GPU has it
    from birdie_hf import build_dna_tokenizer

    assert DataCollatorForBirdie.from_training_args(build_dna_tokenizer(), on).static_shapes
    with pytest.raises(ValueError, match="`fast_path` must be auto, on or off, got 'fast'"):
        BirdieTrainingArguments(output_dir=str(tmp_path), use_cpu=True, fast_path="fast")


@pytest.mark.slow
def test_the_compiled_fast_path_trains_to_the_same_losses(tokenizer, genome, tmp_path):
    """`fast_path="on"` on a CPU (torch.compile through inductor's CPU backend, static shapes) against the plain
    path, same seed and batches: the logged per-entry losses agree within compilation's float tolerance, and a later
    run in the same process does not compile again."""
    runs = {}
    for mode in ("off", "on"):
        trainer = make_trainer(
            tokenizer, genome, tmp_path / mode, policy="static", max_steps=4, logging_steps=2, fast_path=mode
        )
        trainer.train()
        runs[mode] = [
            {key: value for key, value in logs.items() if key.startswith("loss/")}
            for logs in trainer.state.log_history
            if "loss" in logs
        ]
    # A second run with a new model (another seed and mixture, as the lease's runs follow one another in one process)
    # reuses the compiled graph: compilation is paid once per process.
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    make_trainer(tokenizer, genome, tmp_path / "again", policy="ntp", max_steps=2, fast_path="on", seed=1).train()
    assert counters["stats"]["unique_graphs"] == graphs
    assert len(runs["on"]) == len(runs["off"]) == 2
    for on, off in zip(runs["on"], runs["off"]):
        assert on.keys() == off.keys()
        for key in on:
            assert on[key] == pytest.approx(off[key], rel=2e-3), key
