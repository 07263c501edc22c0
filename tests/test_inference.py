import itertools
import logging

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

import birdie_hf.objectives.spans as spans_module
from birdie_hf import (
    BirdieTrainer,
    BirdieTrainingArguments,
    build_causal_lm,
    default_model_config,
    infill,
    score,
    variant_effect,
)
from birdie_hf.inference import (
    DNAInputError,
    InfillingNotTrainedError,
    UntrainedGapsError,
    gap_log_probs,
    infilling_example,
    infilling_limits,
    parse_sequence,
    reverse_complement,
)
from birdie_hf.inference.inputs import gap_layout, infilling_objective
from birdie_hf.objectives.spans import sample_noise_layout


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: What a memorisation run trains on: 12 bases, 3 masked in 2 spans (32 distinct layouts, some with a middle gap).
MEMORISED = "CGTTAATTACTC"
MEMORISED_MIXTURE = [{"objective": "infilling", "corruption_rate": 0.25, "mean_span_length": 2}]


def tiny_model(tokenizer, objectives=("next_token_prediction", "infilling"), device="cpu", **config):
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, **config), seed=0
    )
    if objectives is not None:
        model.config.birdie_objectives = list(objectives)
    return model.to(device).eval()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model(tokenizer)


def ids_of(tokenizer, sequence):
    return np.array(tokenizer(sequence, add_special_tokens=False)["input_ids"], dtype=np.int64)


def objective_gaps(rng, length, rate, span, num_sentinels=128):
    layout = sample_noise_layout(rng, length, rate, span, num_sentinels)
    return [(int(s), int(s + n)) for s, n, noisy in zip(layout.starts, layout.lengths, layout.is_noise) if noisy]


# -- the infilling input is the objective's own ---------------------------------------------------------------------
@pytest.mark.parametrize("gaps", [[(2, 4), (7, 8)], [(0, 3)], [(17, 20)], [(0, 1), (5, 9), (12, 13), (19, 20)]])
def test_infilling_input_matches_the_objective_token_by_token(tokenizer, monkeypatch, random_dna, gaps):
    tokens = ids_of(tokenizer, random_dna(20, seed=3))
    objective = infilling_objective(tokenizer)
    # The objective draws its spans with `spans.sample_noise_layout`; make it draw `gaps` and run its own transform.
    monkeypatch.setattr(spans_module, "sample_noise_layout", lambda rng, length, *args: gap_layout(gaps, length))
    trained = objective(tokens, np.random.default_rng(0))
    built = infilling_example(tokens, gaps, objective)
    np.testing.assert_array_equal(built.input_ids, trained.input_ids)
    np.testing.assert_array_equal(built.labels, trained.labels)
    assert built.prefix_length == trained.prefix_length


def test_infilling_input_layout_by_hand(tokenizer):
    parsed = parse_sequence("ac__ACG_ac", tokenizer)
    assert parsed.gaps == [(2, 4), (7, 8)] and parsed.text == "AC__ACG_AC"
    tokens = ids_of(tokenizer, "ACGTACGTAC")
    example = infilling_example(tokens, parsed.gaps, infilling_objective(tokenizer))
    assert tokenizer.convert_ids_to_tokens(example.input_ids.tolist()) == [
        "<|infilling|>",
        "A",
        "C",
        "<sentinel_0>",
        "A",
        "C",
        "G",
        "<sentinel_1>",
        "A",
        "C",  # prefix (bidirectional)
        "<sentinel_0>",
        "G",
        "T",
        "<sentinel_1>",
        "T",
        "<eos>",  # targets (causal)
    ]
    assert example.prefix_length == 10


def test_infilling_prompt_for_text_generation_front_ends(tokenizer):
    from birdie_hf.hub import pretrained_model_card
    from birdie_hf.inference import infilling_prompt

    prompt = infilling_prompt("ac__ACG_ac", tokenizer)
    assert prompt == "<|infilling|>AC<sentinel_0>ACG<sentinel_1>AC<sentinel_0>"
    # The text tokenizes back to the prefix of the training example plus the first target sentinel.
    example = infilling_example(ids_of(tokenizer, "ACGTACGTAC"), [(2, 4), (7, 8)], infilling_objective(tokenizer))
    assert tokenizer(prompt, add_special_tokens=False)["input_ids"] == example.input_ids[:11].tolist()
    with pytest.raises(DNAInputError, match="no gap"):
        infilling_prompt("ACGT", tokenizer)
    # The pre-training card of an infilling-trained checkpoint carries it as a widget example; NTP-only cards do not.
    sequence = "ACGTACGTAAACCCGGGTTTACGTACGTAAAA"
    birdie = {"policy": "birdie", "entries": ["ntp", "inf"], "reward_classes": ["next_token_prediction", "infilling"]}
    widget = pretrained_model_card("org/m", birdie, {}, widget_sequences=[sequence]).data.widget
    assert widget[0] == {"text": sequence}
    assert widget[1] == {
        "text": "<|infilling|>ACGTACGTAAAC<sentinel_0>ACGTACGTAAAA<sentinel_0>",
        "example_title": "infilling",
    }
    ntp = {"policy": "ntp", "entries": ["ntp"], "reward_classes": ["next_token_prediction"]}
    assert pretrained_model_card("org/m", ntp, {}, widget_sequences=[sequence]).data.widget == [{"text": sequence}]


# -- decoding --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_cached_decoding_matches_the_training_forward_pass(tokenizer, device):
    """Greedy decoding (left-padded batch, prefix read once with a 4-D mask, then the KV cache) gives the
    probabilities a teacher-forced pass with the collator's mask gives on the filled sequence."""
    model = tiny_model(tokenizer, device=device)
    sequences = ["ACGTAC___GTAGCT__AGCTAGCTAGCATCGAT", "ACGTA_CGTAGC", "_TTAGCATCGGATCGATCGATTGCA__"]
    results = infill(model, tokenizer, sequences)
    assert [len(r.sequence) for r in results] == [len(s) for s in sequences]
    for sequence, result in zip(sequences, results):
        assert all(a == b or a == "_" for a, b in zip(sequence, result.sequence))
        assert "".join(result.fills) == "".join(result.sequence[s:e] for s, e in result.gaps)
    forced = gap_log_probs(model, tokenizer, [r.sequence for r in results], [r.gaps for r in results])
    for result, log_probs in zip(results, forced):
        torch.testing.assert_close(result.base_probabilities, np.exp(log_probs), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(
            result.base_probabilities.argmax(-1), ["ACGT".index(b) for b in "".join(result.fills)]
        )
        assert result.log_likelihood == pytest.approx(np.log(result.probabilities).sum())


def test_beam_search_with_every_hypothesis_finds_the_best_fill(tokenizer, model):
    sequence = "ACGTAGCTAG__GATCGATCGA"
    best = infill(model, tokenizer, sequence, decoding="beam", num_beams=16)
    candidates = ["".join(pair) for pair in itertools.product("ACGT", repeat=2)]
    log_probs = gap_log_probs(model, tokenizer, [sequence.replace("__", c) for c in candidates], [[(10, 12)]] * 16)
    totals = [lp[[0, 1], ["ACGT".index(c[0]), "ACGT".index(c[1])]].sum() for c, lp in zip(candidates, log_probs)]
    assert best.fills == [candidates[int(np.argmax(totals))]]
    assert best.log_likelihood == pytest.approx(max(totals), abs=1e-5)
    greedy = infill(model, tokenizer, sequence)
    assert greedy.log_likelihood <= best.log_likelihood + 1e-9


def test_a_beam_step_keeps_each_examples_best_extensions_and_leaves_forced_steps_alone():
    from birdie_hf.inference.decoding import _beam_step

    scores = torch.tensor([-1.0, -2.0, -0.5, -3.0], dtype=torch.float64)  # 2 examples x 2 beams
    log_probs = torch.tensor(
        [[-0.1, -0.2, -3.0, -4.0], [-0.05, -0.3, -5.0, -5.0], [-1.0] * 4, [-1.0] * 4], dtype=torch.float64
    )
    free = torch.tensor([True, True, False, False])  # the first example chooses a base, the second is at a sentinel
    new_scores, choice, reorder = _beam_step(scores, log_probs, free, beams=2)
    # Example 0: beam 0 + A (-1.1) and beam 0 + C (-1.2) beat beam 1 + A (-2.05): both new beams continue beam 0.
    torch.testing.assert_close(new_scores, torch.tensor([-1.1, -1.2, -0.5, -3.0], dtype=torch.float64))
    assert reorder.tolist() == [0, 0, 2, 3] and choice[:2].tolist() == [0, 1]


def test_sampling_is_seeded_and_top_k_1_is_greedy(tokenizer, model):
    sequence = "ACGTAGC" + "_" * 12 + "GATCGATCGAGCTAGCATGCATCGATCGA"
    first = infill(model, tokenizer, sequence, decoding="sample", seed=1, strict=False)
    again = infill(model, tokenizer, sequence, decoding="sample", seed=1, strict=False)
    other = infill(model, tokenizer, sequence, decoding="sample", seed=2, strict=False)
    assert first.fills == again.fills and first.fills != other.fills
    assert (
        infill(model, tokenizer, sequence, decoding="sample", top_k=1, seed=3, strict=False).fills
        == infill(model, tokenizer, sequence, strict=False).fills
    )


def test_explicit_gaps_equal_mask_characters(tokenizer, model):
    by_mask = infill(model, tokenizer, "ACGTAC___GTAGCTAGCTAGCTAG")
    by_gaps = infill(model, tokenizer, "ACGTACGGGGTAGCTAGCTAGCTAG", gaps=[(6, 9)])
    assert by_mask.sequence == by_gaps.sequence and by_mask.fills == by_gaps.fills


def memorised_layouts():
    """Every gap layout the memorisation run's objective draws on MEMORISED (found by drawing until no new one turns
    up in 2,000 draws), in a fixed order."""
    rng, layouts = np.random.default_rng(0), {}
    while True:
        fresh = False
        for _ in range(2000):
            gaps = tuple(objective_gaps(rng, len(MEMORISED), 0.25, 2))
            fresh |= gaps not in layouts
            layouts.setdefault(gaps, None)
        if not fresh:
            return [list(gaps) for gaps in sorted(layouts)]


class StopWhenMemorised(TrainerCallback):
    """Every `every` steps, fill every layout of `layouts` and stop training once each is filled exactly with every
    base at probability >= `margin` (recorded in `verified_at`), so the run trains until memorisation is verified
    rather than for a step count that a library version or a machine may make too short."""

    def __init__(self, tokenizer, layouts, every=100, margin=0.9):
        self.tokenizer, self.layouts, self.every, self.margin = tokenizer, layouts, every, margin
        self.verified_at = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every:
            return
        results = infill(
            model,
            self.tokenizer,
            [MEMORISED] * len(self.layouts),
            gaps=self.layouts,
            mixture=MEMORISED_MIXTURE,
            disable_tqdm=True,
        )
        exact = all(r.sequence == MEMORISED for r in results)
        if exact and min(r.probabilities.min() for r in results) >= self.margin:
            self.verified_at = state.global_step
            control.should_training_stop = True


def train_memorised_checkpoint(tokenizer, output_dir):
    """A tiny model trained by BirdieTrainer on one repeated 12-base sequence with the infilling objective only, until
    it fills every layout the objective draws exactly with probability >= 0.9 per base (checked every 100 steps, at
    most 4,000 steps)."""
    ids = ids_of(tokenizer, MEMORISED).tolist()
    args = BirdieTrainingArguments(
        output_dir=str(output_dir),
        objectives=MEMORISED_MIXTURE,
        policy="static",
        max_steps=4000,  # seeds 0-3 verified at 400-800 steps
        per_device_train_batch_size=32,
        learning_rate=5e-3,
        max_length=64,
        warmup_steps=0,
        lr_scheduler_type="constant",
        save_strategy="no",
        logging_steps=400,
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        seed=0,
    )
    model = tiny_model(tokenizer, objectives=None)
    stop = StopWhenMemorised(tokenizer, memorised_layouts())
    trainer = BirdieTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"input_ids": [ids] * 64}),
        processing_class=tokenizer,
        callbacks=[stop],
    )
    trainer.train()
    assert stop.verified_at is not None, f"not memorised after {trainer.state.global_step} steps"
    return trainer.model.eval()


@pytest.mark.slow
def test_a_model_that_memorised_a_sequence_fills_its_gaps_exactly(tokenizer, tmp_path):
    model = train_memorised_checkpoint(tokenizer, tmp_path)
    assert model.config.birdie_objectives == ["infilling"]  # what BirdieTrainer records
    rng = np.random.default_rng(5)
    layouts = [objective_gaps(rng, len(MEMORISED), 0.25, 2) for _ in range(20)]
    assert any(0 < start and end < len(MEMORISED) for gaps in layouts for start, end in gaps)  # middle gaps too
    results = infill(model, tokenizer, [MEMORISED] * len(layouts), gaps=layouts, mixture=MEMORISED_MIXTURE)
    assert [r.sequence for r in results] == [MEMORISED] * len(layouts)
    assert min(r.probabilities.min() for r in results) > 0.5
    # Filled from what the prefix says: the same gap with other bases around it is filled differently.
    scrambled = infill(model, tokenizer, "GGGGGGGGG_GG", mixture=MEMORISED_MIXTURE)
    assert scrambled.probabilities[0] < results[0].probabilities.min()


def test_memorised_layouts_are_every_layout_the_objective_draws():
    layouts = memorised_layouts()
    assert len(layouts) == 32 and all(sum(end - start for start, end in gaps) == 3 for gaps in layouts)
    rng = np.random.default_rng(5)
    assert all(objective_gaps(rng, len(MEMORISED), 0.25, 2) in layouts for _ in range(200))


# -- scoring ---------------------------------------------------------------------------------------------------------
def test_bidirectional_score_reads_the_right_flank_and_causal_does_not(tokenizer, model, random_dna):
    sequence = random_dna(40, seed=7)
    changed = sequence[:25] + {"A": "C", "C": "G", "G": "T", "T": "A"}[sequence[25]] + sequence[26:]
    before, after = score(model, tokenizer, [sequence, changed], stride=7)
    assert before.stride == 7  # position 20 and 25 are masked in different passes: 25 is context for 20
    assert abs(before.bidirectional[20] - after.bidirectional[20]) > 1e-4
    torch.testing.assert_close(before.causal[1:25], after.causal[1:25])
    assert np.isnan(before.causal[0]) and abs(before.causal[26] - after.causal[26]) > 1e-4
    np.testing.assert_allclose(np.exp(before.bidirectional_log_probs).sum(-1), 1.0, rtol=1e-6)


def test_teacher_forcing_reads_each_example_as_it_reads_it_alone(tokenizer, model, random_dna, monkeypatch):
    """Batches mix lengths (right padding) and, with a prefix, carry the dense prefix-LM mask built on the model's
    device; a batch without any prefix passes no mask (the model's own causal mask): each example reads the same as in
    a batch of its own."""
    from birdie_hf.inference.forward import teacher_forced_base_log_probs
    from birdie_hf.objectives.base import ObjectiveExample

    ids = [np.asarray(tokenizer.encode(random_dna(n, seed=n), add_special_tokens=False)) for n in (9, 17, 30)]
    causal = [ObjectiveExample(i, i, 0) for i in ids]
    prefixed = [ObjectiveExample(i, i, 4) for i in ids]
    masks = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: masks.append(k.get("attention_mask")) or original(*a, **k))
    bases = tokenizer.convert_tokens_to_ids(list("ACGT"))
    for examples, masked in ((causal, False), (prefixed, True)):
        masks.clear()
        together = teacher_forced_base_log_probs(model, examples, bases, batch_size=3, disable_tqdm=True)
        assert len(masks) == 1 and (masks[0] is not None) == masked
        for example, read in zip(examples, together):
            alone = teacher_forced_base_log_probs(model, [example], bases, disable_tqdm=True)[0]
            np.testing.assert_allclose(read, alone, atol=1e-5)
    # The prefix is read both ways: a change at its end reaches its start.
    first, changed = ids[2].copy(), ids[2].copy()
    changed[3] = bases[0] if ids[2][3] != bases[0] else bases[1]
    before, after = teacher_forced_base_log_probs(
        model, [ObjectiveExample(first, first, 4), ObjectiveExample(changed, changed, 4)], bases, disable_tqdm=True
    )
    assert np.abs(before[1:3] - after[1:3]).max() > 1e-5


def test_scoring_a_1kbp_window_takes_stride_passes(tokenizer, model, random_dna, monkeypatch):
    import birdie_hf.inference.scoring as scoring

    calls = []
    original = scoring.teacher_forced_base_log_probs
    monkeypatch.setattr(
        scoring,
        "teacher_forced_base_log_probs",
        lambda model, examples, *a, **k: calls.append(len(examples)) or original(model, examples, *a, **k),
    )
    result = score(model, tokenizer, random_dna(1000, seed=1), batch_size=8)
    # Default mixture: 1000 bases hold at most 128 gaps (the sentinels), so every 8th base is masked per pass.
    assert result.stride == 8 and calls == [8, 1]
    assert np.isfinite(result.bidirectional).all() and np.isfinite(result.causal[1:]).all()


def test_long_sequences_are_tiled(tokenizer, model, random_dna):
    sequence = random_dna(200, seed=2)
    tiled = score(model, tokenizer, sequence, window_length=64)
    whole = score(model, tokenizer, sequence[:64], window_length=64)
    assert np.isfinite(tiled.bidirectional).all() and np.isfinite(tiled.causal[1:]).all()
    # The first causal window is the same read.
    torch.testing.assert_close(tiled.causal[:64], whole.causal, equal_nan=True)
    assert tiled.bidirectional.shape == (200,) and tiled.causal.shape == (200,)


def test_n_positions_are_not_scored(tokenizer, model):
    result = score(model, tokenizer, "ACGTNACGTRACGTACGT")
    assert np.isnan(result.bidirectional[[4, 9]]).all() and np.isnan(result.causal[[0, 4, 9]]).all()
    assert result.sequence == "ACGTNACGTNACGTACGT"


def test_a_checkpoint_that_never_masked_a_window_end_leaves_the_sequence_ends_unscored(tokenizer, random_dna, caplog):
    """The `dna` preset's infilling keeps both window ends known, so a first or last base was never a gap: score()
    leaves exactly those two bidirectional scores NaN (with a warning), scores the rest, and strict=False all."""
    interior = tiny_model(tokenizer)
    interior.config.birdie_mixture = [  # two of the dna preset's infilling entries
        {
            "objective": "infilling",
            "name": f"interior_{rate}",
            "settings": {"corruption_rate": rate, "mean_span_length": 3, "span_layout": "interior"},
        }
        for rate in (0.15, 0.5)
    ]
    sequence = random_dna(22, seed=3)
    with caplog.at_level("WARNING"):
        result = score(interior, tokenizer, sequence, stride=7)
    assert np.isnan(result.bidirectional).tolist() == [True] + [False] * 20 + [True]
    assert np.isfinite(result.causal[1:]).all()  # the causal reading covers the ends
    assert "2 bases at a sequence's end have no bidirectional score" in caplog.text
    assert "both ends known" in caplog.text
    anyway = score(interior, tokenizer, sequence, stride=7, strict=False)
    assert np.isfinite(anyway.bidirectional).all()


def test_variant_effect_is_the_ratio_of_the_two_readings(tokenizer, model, random_dna):
    sequence = random_dna(30, seed=4)
    position = 12
    ref = sequence[position]
    alt = "A" if ref != "A" else "C"
    (effect,) = variant_effect(model, tokenizer, [(sequence, position, alt)])
    assert (effect.position, effect.ref, effect.alt) == (position, ref, alt)
    site = gap_log_probs(model, tokenizer, sequence, [(position, position + 1)])[0]
    assert effect.bidirectional_llr == pytest.approx(site["ACGT".index(alt)] - site["ACGT".index(ref)], abs=1e-6)
    mutated = sequence[:position] + alt + sequence[position + 1 :]
    ref_score, alt_score = score(model, tokenizer, [sequence, mutated], bidirectional=False)
    assert effect.causal_llr == pytest.approx(np.nansum(alt_score.causal) - np.nansum(ref_score.causal), abs=1e-5)
    assert effect.causal_site_llr == pytest.approx(alt_score.causal[position] - ref_score.causal[position], abs=1e-5)

    (both,) = variant_effect(model, tokenizer, [(sequence, position, alt)], reverse_complement_average=True)
    (flipped,) = variant_effect(
        model, tokenizer, [(reverse_complement(sequence), len(sequence) - 1 - position, reverse_complement(alt))]
    )
    assert both.bidirectional_llr == pytest.approx((effect.bidirectional_llr + flipped.bidirectional_llr) / 2)
    assert both.causal_llr == pytest.approx((effect.causal_llr + flipped.causal_llr) / 2)


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, True])
def test_scoring_refuses_a_window_length_that_cannot_be_read(tokenizer, model, bad):
    with pytest.raises(ValueError, match=rf"window_length must be an integer of at least 2 bases .*got {bad!r}"):
        score(model, tokenizer, "ACGTACGTAC", window_length=bad)
    with pytest.raises(ValueError, match="window_length must be an integer of at least 2"):
        variant_effect(model, tokenizer, [("ACGTACGTAC", 3, "A")], window_length=bad)


def test_scoring_refuses_windows_longer_than_the_models_positions(tokenizer):
    short = tiny_model(tokenizer, max_position_embeddings=64)
    with pytest.raises(
        ValueError,
        match=r"window_length=100 makes causal examples of 100 tokens, more than the model's 64 positions.*at most 64",
    ):
        score(short, tokenizer, "ACGT" * 30, window_length=100, bidirectional=False)
    with pytest.raises(
        ValueError,
        match=r"window_length=64 makes infilling examples of 98 tokens, more than the model.s 64 positions.*use at most 40",
    ):
        score(short, tokenizer, "ACGT" * 30, window_length=64, causal=False, stride=4)
    with pytest.raises(ValueError, match="stride must be an integer of at least 2"):
        score(short, tokenizer, "ACGT" * 3, stride=2.5)
    result = score(short, tokenizer, "ACGT" * 30, window_length=40, stride=6)  # fits: read and tiled
    assert np.isfinite(result.causal[1:]).all() and np.isfinite(result.bidirectional).all()


def test_variant_effect_checks_a_given_reference_allele_and_reads_vcf_positions(tokenizer, model):
    sequence = "ACGTTGCAAC"
    (zero,) = variant_effect(model, tokenizer, [(sequence, 4, "T", "A")])
    (vcf,) = variant_effect(
        model, tokenizer, [{"sequence": sequence, "position": 5, "ref": "t", "alt": "A"}], one_based=True
    )
    assert (zero.position, zero.ref, zero.alt) == (vcf.position, vcf.ref, vcf.alt) == (4, "T", "A")
    assert zero.bidirectional_llr == pytest.approx(vcf.bidirectional_llr)
    # A VCF position given as 0-based points one base too far: the ref check catches it and says how.
    with pytest.raises(
        DNAInputError,
        match=r"variants\[0\]: ref 'G' does not match .*'C' at position 6 \(0-based\).*one before is 'G'.*one_based=True",
    ):
        variant_effect(model, tokenizer, [(sequence, 6, "G", "A")])
    with pytest.raises(DNAInputError, match=r"variants\[1\]: alt 'T' is the reference base at position 4"):
        variant_effect(model, tokenizer, [(sequence, 4, "C"), (sequence, 4, "T")])
    with pytest.raises(
        DNAInputError, match=r"variants\[0\] needs the keys sequence, position and alt; missing \['alt'\]"
    ):
        variant_effect(model, tokenizer, [{"sequence": sequence, "position": 4}])


# -- what the checkpoint was trained on ------------------------------------------------------------------------------
def test_limits_follow_the_recorded_or_default_mixture(tokenizer):
    config = default_model_config(tokenizer)
    default = infilling_limits(config, tokenizer)
    assert "default mixture" in default.source
    # 50 % in spans of mean 3 is the heaviest default entry: 50 of 100 bases in round(50 / 3) = 17 spans.
    assert (default.max_gaps(100), default.max_masked(100)) == (17, 50)
    config.birdie_mixture = [
        {"objective": "infilling", "name": "long", "settings": {"corruption_rate": 0.15, "mean_span_length": 32}}
    ]
    recorded = infilling_limits(config, tokenizer)
    assert recorded.source == "config.birdie_mixture" and recorded.max_gaps(256) == 1
    # One span per window always sits at an end: such a mixture never trains a gap inside a window.
    assert recorded.max_gap_length(256, interior=True) == 0
    assert recorded.max_gap_length(256, interior=False) == 38
    recorded.check(256, [(0, 38)])
    with pytest.raises(UntrainedGapsError, match=r"gap of 5 bases \(100, 105\) inside its 256 bases"):
        recorded.check(256, [(100, 105)])


def test_clear_errors_for_bad_input(tokenizer, model, random_dna):
    with pytest.raises(DNAInputError, match=r"positions 4 \('X'\), 5 \('X'\), 9 \(' '\)"):
        infill(model, tokenizer, "ACGTXX__A CGT")
    with pytest.raises(DNAInputError, match="has no gaps"):
        infill(model, tokenizer, "ACGTACGT")
    with pytest.raises(DNAInputError, match=r"\(2, 4\) and \(4, 6\) touch.*merge them into \(2, 6\)"):
        infill(model, tokenizer, "ACGTACGTACGT", gaps=[(2, 4), (4, 6)])
    with pytest.raises(DNAInputError, match="outside the given gaps"):
        infill(model, tokenizer, "AC_TACGTACGT", gaps=[(5, 6)])
    sequence = random_dna(256, seed=5)
    with pytest.raises(UntrainedGapsError, match=r"gap of 60 bases \(100, 160\) inside its 256 bases.*at most 31"):
        infill(model, tokenizer, sequence[:100] + "_" * 60 + sequence[160:])
    assert len(infill(model, tokenizer, sequence[:100] + "_" * 60 + sequence[160:], strict=False).fills[0]) == 60
    spaced = "".join("_" if i % 3 == 1 else base for i, base in enumerate(random_dna(40, seed=6)))
    with pytest.raises(UntrainedGapsError, match="13 gaps in 40 bases; the infilling objective makes at most 7"):
        infill(model, tokenizer, spaced)
    with pytest.raises(UntrainedGapsError, match="masked entirely"):
        infill(model, tokenizer, "____")
    with pytest.raises(ValueError, match="decoding must be one of"):
        infill(model, tokenizer, "AC_GT", decoding="nucleus")
    with pytest.raises(DNAInputError, match="alt must be one of A, C, G, T"):
        variant_effect(model, tokenizer, [("ACGTACGT", 2, "N")])
    with pytest.raises(DNAInputError, match=r"position must be an integer in \[0, 7\] \(0-based\)"):
        variant_effect(model, tokenizer, [("ACGTACGT", 8, "A")])
    with pytest.raises(DNAInputError, match=r"position must be an integer in \[1, 8\] \(1-based\)"):
        variant_effect(model, tokenizer, [("ACGTACGT", 0, "A")], one_based=True)
    with pytest.raises(DNAInputError, match="reference base at position 2 is 'N'"):
        variant_effect(model, tokenizer, [("ACNTACGT", 2, "A")])


def test_a_next_token_prediction_checkpoint_says_it_cannot_infill(tokenizer, tmp_path, caplog):
    model = tiny_model(tokenizer, objectives=None)
    args = BirdieTrainingArguments(
        output_dir=str(tmp_path), policy="ntp", max_length=64, use_cpu=True, report_to="none"
    )
    windows = Dataset.from_dict({"input_ids": [ids_of(tokenizer, "ACGT" * 8).tolist()] * 4})
    BirdieTrainer(model=model, args=args, train_dataset=windows, processing_class=tokenizer)
    assert model.config.birdie_objectives == ["next_token_prediction"]  # what BirdieTrainer records
    with pytest.raises(
        InfillingNotTrainedError,
        match=r"trained with \['next_token_prediction'\] only, without the "
        r"infilling objective, so it cannot fill gaps",
    ):
        infill(model, tokenizer, "ACGT__ACGT")
    with pytest.raises(InfillingNotTrainedError, match="bidirectional=False"):
        score(model, tokenizer, "ACGTACGT", bidirectional=True)
    with caplog.at_level(logging.WARNING):
        causal_only = score(model, tokenizer, "ACGTACGTAC")
    assert causal_only.bidirectional is None and np.isfinite(causal_only.causal[1:]).all()
    assert "trained without infilling" in caplog.text
    (effect,) = variant_effect(model, tokenizer, [("ACGTACGTAC", 3, "A")])
    assert effect.bidirectional_llr is None and effect.causal_llr is not None


def test_a_checkpoint_without_a_record_needs_strict_false(tokenizer):
    model = tiny_model(tokenizer, objectives=None)
    with pytest.raises(InfillingNotTrainedError, match="records no training objectives.*strict=False"):
        infill(model, tokenizer, "ACGT__ACGT")
    assert len(infill(model, tokenizer, "ACGT__ACGT", strict=False).fills[0]) == 2
