"""What training does with the windows, checked before the first step: held-out windows (empty validation splits from
short records or `validation_fraction=0`), windows that fit `max_length`; and the windows and bases counted as seen."""

import logging

import pytest

from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    DataCollatorForBirdie,
    build_causal_lm,
    default_model_config,
    load_genome_windows,
)
from birdie_hf.accounting import compute_accounting
from birdie_hf.data import (
    MissingHeldOutDataError,
    WindowCroppingError,
    check_eval_dataset,
    check_windows_fit,
    load_sequence_windows,
    source_tokens_seen,
    window_bases_used,
)


MIXTURE = ["next_token_prediction", "copying"]


# -- empty validation splits ----------------------------------------------------------------------------------------
def test_mitochondrion_with_long_windows_warns_that_no_window_is_held_out(shared_dir, tokenizer, caplog):
    path = str(shared_dir / "data/genomes/MT-human.fa")
    with caplog.at_level(logging.WARNING):
        data = load_genome_windows(path, tokenizer, window_length=1024)
    assert len(data["train"]) == 15 and len(data["validation"]) == 0
    warning = [r for r in caplog.records if "No validation window" in r.getMessage()]
    assert warning and warning[0].levelno == logging.WARNING
    message = warning[0].getMessage()
    # 5% of 16,569 bases: 828 held out, fewer than a window; 1024 / 16569 -> 0.062.
    assert "at most 828 bases" in message and "window_length=1024" in message
    assert "window_length of at most 828" in message and "validation_fraction of at least 0.062" in message


def test_short_records_report_the_bases_never_used(write_fasta, tokenizer, random_dna, caplog):
    # A draft assembly: two contigs long enough for windows, three shorter than a window.
    contigs = [
        random_dna(400, seed=1),
        random_dna(300, seed=2),
        random_dna(90, seed=3),
        random_dna(50, seed=4),
        random_dna(20, seed=5),
    ]
    path = write_fasta("".join(f">contig_{i}\n{sequence}\n" for i, sequence in enumerate(contigs)))
    with caplog.at_level(logging.WARNING):
        load_genome_windows(path, tokenizer, window_length=100, validation_fraction=0)
    assert "Skipped 3 of 5 records" in caplog.text
    assert "160 of 860 bases (18.6%) are never used" in caplog.text


def test_held_out_parts_shorter_than_a_window_are_counted(write_fasta, tokenizer, random_dna, caplog):
    path = write_fasta(f">long\n{random_dna(4000)}\n>mid\n{random_dna(1000, seed=1)}\n")
    with caplog.at_level(logging.WARNING):
        data = load_genome_windows(path, tokenizer, window_length=100, validation_fraction=0.05)
    assert len(data["validation"]) == 2  # the 200 held-out bases of `long`; the 50 of `mid` fit no window
    assert "50 of 250 bases (20.0%) held out for validation lie in held-out parts shorter than" in caplog.text


def test_empty_held_out_set_is_refused_for_birdie_and_dropped_for_the_baselines(tokenizer, write_fasta, caplog):
    data = load_genome_windows(write_fasta(">r\nACGTACGTACGT\n"), tokenizer, window_length=4, validation_fraction=0)
    assert len(data["validation"]) == 0
    with pytest.raises(
        MissingHeldOutDataError,
        match=r"policy='birdie' needs held-out windows .* `eval_dataset` "
        r"is empty.*smaller `window_length`, a larger "
        r"`validation_fraction`",
    ):
        check_eval_dataset(data["validation"], "birdie")
    with pytest.raises(MissingHeldOutDataError, match="no `eval_dataset` was given"):
        check_eval_dataset(None, "birdie")
    for policy in ("static", "ntp"):
        with caplog.at_level(logging.WARNING):
            assert check_eval_dataset(data["validation"], policy) is None
        assert f"policy={policy!r} run trains without held-out evaluations" in caplog.text
    assert check_eval_dataset(data["train"], "birdie") is data["train"]


def tiny_trainer(tokenizer, data, tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        per_device_train_batch_size=2,
        max_length=64,
        objectives=MIXTURE,
        policy_warmup_steps=1,
        policy_eval_interval=1,
        policy_validation_windows=2,
        policy_hidden_size=8,
        policy_num_layers=1,
        policy_update_iterations=2,
        policy_num_candidates=8,
        policy_top_n=2,
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        seed=0,
    )
    settings.update(overrides)
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=16, num_hidden_layers=1, num_attention_heads=2), seed=0
    )
    return BirdieTrainer(
        model=model,
        args=BirdieTrainingArguments(**settings),
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
    )


@pytest.mark.parametrize("policy", ["static", "ntp"])
def test_baselines_train_without_held_out_windows(tokenizer, write_fasta, random_dna, tmp_path, policy):
    data = load_genome_windows(
        write_fasta(f">r\n{random_dna(600)}\n"), tokenizer, window_length=30, validation_fraction=0
    )
    trainer = tiny_trainer(tokenizer, data, tmp_path, policy=policy)
    assert trainer.eval_dataset is None
    result = trainer.train()  # evaluations were scheduled at every step and failed at step 1 on the empty set
    assert result.global_step == 3 and trainer.mixture_trajectory()["evaluations"] == []


def test_birdie_trainer_refuses_an_empty_held_out_set_when_built(tokenizer, write_fasta, random_dna, tmp_path):
    data = load_genome_windows(
        write_fasta(f">r\n{random_dna(600)}\n"), tokenizer, window_length=30, validation_fraction=0
    )
    with pytest.raises(MissingHeldOutDataError, match="`eval_dataset` is empty"):
        tiny_trainer(tokenizer, data, tmp_path, policy="birdie")


# -- windows that fit max_length --------------------------------------------------------------------------------------
def test_windows_cropped_by_max_length_are_refused_with_the_numbers(tokenizer):
    collator = DataCollatorForBirdie(tokenizer, objectives=MIXTURE, max_length=512)
    assert window_bases_used(collator, 256) == {"next_token_prediction": 256, "copying": 255}
    assert window_bases_used(collator, 1024) == {"next_token_prediction": 512, "copying": 255}
    with pytest.raises(WindowCroppingError) as info:
        check_windows_fit(collator, 1024)
    message = str(info.value)
    assert "max_length=512 is too small for windows of window_length=1024 bases" in message
    assert "2 of 2 objective entries would crop every window" in message and "'copying' 255" in message
    assert "'next_token_prediction' 512" in message
    assert "max_length >= 2050" in message and "window_length <= 255" in message
    assert check_windows_fit(collator, 255) == {"next_token_prediction": 255, "copying": 255}


def test_trainer_warns_when_max_length_crops_the_windows(tokenizer, write_fasta, random_dna, tmp_path, caplog):
    data = load_genome_windows(write_fasta(f">r\n{random_dna(2000)}\n"), tokenizer, window_length=40)
    with caplog.at_level(logging.WARNING):
        tiny_trainer(tokenizer, data, tmp_path, policy="static", max_length=64)
    assert "max_length=64 is too small for windows of window_length=40 bases" in caplog.text
    assert "'copying' 31" in caplog.text


# -- bases counted as seen --------------------------------------------------------------------------------------------
def _counting_collator(trainer) -> list[int]:
    """Record the number of windows every batch the collator builds receives."""
    received = []
    collate = trainer.data_collator.torch_call

    def counting(features):
        received.append(len(features))
        return collate(features)

    trainer.data_collator.torch_call = counting
    return received


def test_source_tokens_seen_counts_the_windows_the_collator_received(tokenizer, write_fasta, random_dna, tmp_path):
    data = load_genome_windows(
        write_fasta(f">r\n{random_dna(300)}\n"), tokenizer, window_length=30, validation_fraction=0
    )
    assert len(data["train"]) == 10
    trainer = tiny_trainer(
        tokenizer, data, tmp_path, policy="static", max_steps=4, per_device_train_batch_size=4, logging_steps=3
    )
    received = _counting_collator(trainer)
    result = trainer.train()
    compute = trainer.mixture_trajectory()["compute"]
    # The loader prefetches one batch beyond the last step; the windows trained on are those of the first 4 batches
    # (10 windows in batches of 4: 4 + 4 + 2, then a new pass).
    assert received[: result.global_step] == [4, 4, 2, 4] and compute["windows"] == 14
    assert source_tokens_seen(compute, trainer.data_collator, 30) == 14 * 30
    assert compute["model_tokens"] == trainer.state.num_input_tokens_seen  # transformers' "non_padding" count
    with pytest.raises(ValueError, match=r"entries \['infilling'\] that the collator lacks"):
        source_tokens_seen({"entries": {"infilling": {"windows": 1}}}, trainer.data_collator, 30)
    # A run resumed from a checkpoint whose logs counted tokens but not windows: the bases are not known.
    older = [{k: v for k, v in logs.items() if not k.startswith("windows/")} for logs in trainer.state.log_history]
    resumed = compute_accounting(older[:1] + trainer.state.log_history[1:], trainer.data_collator.entry_names, [1, 1])
    assert resumed["windows_complete"] is False
    with pytest.raises(ValueError, match="did not count windows"):
        source_tokens_seen(resumed, trainer.data_collator, 30)


def test_source_tokens_seen_is_exact_when_windows_are_cropped_to_the_example_length(
    tokenizer, write_fasta, random_dna, tmp_path
):
    data = load_genome_windows(
        write_fasta(f">r\n{random_dna(600)}\n"), tokenizer, window_length=40, validation_fraction=0
    )
    trainer = tiny_trainer(
        tokenizer,
        data,
        tmp_path,
        policy="static",
        max_steps=3,
        max_length=96,
        example_length=48,
        gradient_accumulation_steps=2,
        per_device_train_batch_size=2,
    )
    received = _counting_collator(trainer)
    trainer.train()
    compute = trainer.mixture_trajectory()["compute"]
    used = window_bases_used(trainer.data_collator, 40)
    assert used["copying"] < 40 == used["next_token_prediction"]  # copying reads what fits in 48 tokens
    assert compute["windows"] == sum(received[:6]) == 12  # 3 steps of 2 micro-batches of 2 windows
    expected = sum(compute["entries"][name]["windows"] * used[name] for name in used)
    assert source_tokens_seen(compute, trainer.data_collator, 40) == expected < 12 * 40


def test_counts_between_logs_reach_the_checkpoint_and_a_resume_counts_every_window_once(
    tokenizer, write_fasta, random_dna, tmp_path
):
    data = load_genome_windows(
        write_fasta(f">r\n{random_dna(300)}\n"), tokenizer, window_length=30, validation_fraction=0
    )
    settings = dict(policy="static", max_steps=5, per_device_train_batch_size=2, logging_steps=10)
    whole = tiny_trainer(tokenizer, data, tmp_path / "whole", **settings)
    whole.train()
    assert whole.mixture_trajectory()["compute"]["windows"] == 10
    saving = dict(settings, save_strategy="steps", save_steps=3)
    first = tiny_trainer(tokenizer, data, tmp_path / "resumed", **saving)
    first.train()
    checkpoint = tmp_path / "resumed" / "run" / "checkpoint-3"
    at_save = [logs for logs in first.state.log_history if logs["step"] == 3]
    assert sum(v for logs in at_save for k, v in logs.items() if k.startswith("windows/")) == 6
    resumed = tiny_trainer(tokenizer, data, tmp_path / "resumed", **saving, overwrite_output_dir=False)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.mixture_trajectory()["compute"] == whole.mixture_trajectory()["compute"]


# -- CSV / Hub sequences ----------------------------------------------------------------------------------------------
def test_sequence_windows_hold_out_whole_sequences(tmp_path, tokenizer, random_dna):
    path = tmp_path / "reads.csv"
    path.write_text("sequence\n" + "".join(f"{random_dna(40, seed=i)}\n" for i in range(20)))
    data = load_sequence_windows(path, tokenizer, window_length=20, validation_fraction=0.1, seed=1)
    train, validation = set(data["train"]["record"]), set(data["validation"]["record"])
    assert len(validation) == 2 and len(train) == 18 and not train & validation
    assert len(data["train"]) == 36 and len(data["validation"]) == 4
    none_held = load_sequence_windows(path, tokenizer, window_length=20, validation_fraction=0)
    assert len(none_held["validation"]) == 0 and len(none_held["train"]) == 40


def test_sequence_windows_use_the_validation_split_and_leave_test_alone(tmp_path, tokenizer, random_dna):
    folder = tmp_path / "task"
    folder.mkdir()
    for split, count, seed in (("train", 6, 0), ("dev", 2, 100), ("test", 3, 200)):
        rows = "".join(f"{random_dna(30, seed=seed + i)},0\n" for i in range(count))
        (folder / f"{split}.csv").write_text("sequence,label\n" + rows)
    data = load_sequence_windows(folder, tokenizer, window_length=30)
    assert len(data["train"]) == 6 and len(data["validation"]) == 2
    assert set(data["validation"]["record"]) == {"validation:0", "validation:1"}
