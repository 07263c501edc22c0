import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from birdie_hf import DataCollatorForBirdie, LiveMixture, pack_examples, packed_attention_mask
from birdie_hf.modeling import build_causal_lm, default_model_config
from birdie_hf.objectives import IGNORE_INDEX, ObjectiveExample
from birdie_hf.packing import first_fit, to_model_inputs


def windows(n=8, length=64, seed=0):
    rng = np.random.default_rng(seed)
    return [{"input_ids": rng.integers(4, 8, size=length).tolist()} for _ in range(n)]


SMALL_MIXTURE = [
    "next_token_prediction",
    "prefix_lm",
    {"objective": "infilling", "mean_span_length": 3},
    {"objective": "deshuffling", "mean_span_length": 4},
    "copying",
    {"objective": "selective_copying", "max_spans": 2, "span_length": 4, "flank_length": 3},
    {"objective": "autoencoding", "shuffle": True},
]


def test_hand_checked_mask_for_two_packed_examples():
    a = ObjectiveExample(np.array([10, 4, 5, 6]), np.array([-100, -100, 5, 6]), prefix_length=2)
    b = ObjectiveExample(np.array([4, 5]), np.array([-100, 5]), prefix_length=0)
    packed = pack_examples([a, b], [3, 0], max_length=8, pad_token_id=0, pad_to_multiple_of=8)
    assert packed["input_ids"].tolist() == [[10, 4, 5, 6, 4, 5, 0, 0]]
    assert packed["labels"].tolist() == [[-100, -100, 5, 6, -100, 5, -100, -100]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 0, 0]]
    assert packed["objective_ids"].tolist() == [[3, 3, 3, 3, 0, 0, -1, -1]]
    mask = packed_attention_mask(
        torch.from_numpy(packed["segment_ids"]), torch.from_numpy(packed["bidirectional_mask"])
    )
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 1, 0, 0, 0, 0, 0, 0],  # prefix token 0 sees the whole prefix
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0],  # suffix: causal
        [1, 1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 0, 0, 0],  # second example: its own causal block only
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 0],  # padding sees padding, never a real token
        [0, 0, 0, 0, 0, 0, 1, 1],
    ]
    assert mask.dtype == torch.float32 and mask.min() == torch.finfo(torch.float32).min


def test_first_fit():
    assert first_fit([5, 3, 4, 2, 1], 8) == [[0, 1], [2, 3, 4]]
    with pytest.raises(ValueError, match="more than the row length"):
        first_fit([9], 8)


def test_batch_shapes_and_invariants(tokenizer):
    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    batch = collator(windows(16))
    rows, length = batch["input_ids"].shape
    assert rows <= 16 and length <= 160 and length % 8 == 0
    for key in ("labels", "position_ids", "objective_ids", "segment_ids", "bidirectional_mask"):
        assert batch[key].shape == (rows, length), key
    pad = batch["segment_ids"] == -1
    assert (batch["labels"][pad] == IGNORE_INDEX).all() and (batch["objective_ids"][pad] == -1).all()
    assert (batch["input_ids"][pad] == tokenizer.pad_token_id).all()
    # Every example starts at position 0; prefix tokens come first in their example.
    starts = batch["position_ids"] == 0
    assert (batch["segment_ids"][starts & ~pad].unique() >= 0).all()
    assert set(batch["objective_ids"].unique().tolist()) - {-1} <= set(range(len(SMALL_MIXTURE)))


def test_dense_and_segment_formats_agree(tokenizer):
    dense = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160, mask_format="dense")
    compact = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    a, b = dense(windows()), compact(windows())
    torch.testing.assert_close(a["attention_mask"], to_model_inputs(b)["attention_mask"])
    for key in ("input_ids", "labels", "position_ids", "objective_ids"):
        assert torch.equal(a[key], b[key])


def test_deterministic_and_seed_dependent(tokenizer):
    make = lambda seed: DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160, seed=seed)
    a, b, c = make(0)(windows()), make(0)(windows()), make(1)(windows())
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert not torch.equal(a["input_ids"], c["input_ids"]) or not torch.equal(a["objective_ids"], c["objective_ids"])


def test_mixture_controls_objective_draws(tokenizer):
    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    one_hot = np.eye(len(SMALL_MIXTURE))[4]
    collator.mixture.update(one_hot)
    ids = collator(windows(16))["objective_ids"]
    assert set(ids.unique().tolist()) == {-1, 4}
    counts = collator.collate_objective(windows(4), 1)["objective_ids"]
    assert set(counts.unique().tolist()) <= {-1, 1}


def test_window_too_short_and_bad_arguments(tokenizer):
    from birdie_hf.objectives import ObjectiveConfigError

    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    with pytest.raises(ObjectiveConfigError, match="window_length=10"):
        collator.validate_window_length(10)
    collator.mixture.update(np.eye(len(SMALL_MIXTURE))[5])
    with pytest.raises(ValueError, match="too short for objective 'selective_copying'"):
        collator(windows(2, length=10))
    with pytest.raises(ObjectiveConfigError, match="max_length=16"):
        DataCollatorForBirdie(tokenizer, objectives=["selective_copying"], max_length=16)
    with pytest.raises(ValueError, match="mask_format"):
        DataCollatorForBirdie(tokenizer, mask_format="sparse")
    with pytest.raises(ValueError, match="do not match"):
        DataCollatorForBirdie(tokenizer, objectives=["copying"], mixture=LiveMixture(["x"], [1.0]))


def test_live_mixture_validation():
    mixture = LiveMixture(["a", "b"], [1, 3])
    np.testing.assert_allclose(mixture.weights, [0.25, 0.75])
    with pytest.raises(ValueError, match="'b'"):
        mixture.update([1.0, -1.0])
    with pytest.raises(ValueError, match="zero"):
        mixture.update([0, 0])
    with pytest.raises(ValueError, match="2 objectives"):
        mixture.update([1.0])


class _Windows(torch.utils.data.Dataset):
    def __init__(self, n):
        self.items = windows(n, seed=1)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_mixture_update_reaches_dataloader_workers(tokenizer, context):
    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    collator.mixture.update(np.eye(len(SMALL_MIXTURE))[0])
    workers, prefetch = 2, 1
    loader = DataLoader(
        _Windows(4 * 40),
        batch_size=4,
        collate_fn=collator,
        num_workers=workers,
        prefetch_factor=prefetch,
        multiprocessing_context=context,
        persistent_workers=True,
    )
    seen = []
    for step, batch in enumerate(loader):
        seen.append(set(batch["objective_ids"].unique().tolist()) - {-1})
        if step == 5:
            collator.mixture.update(np.eye(len(SMALL_MIXTURE))[4])
    lag = workers * prefetch
    assert all(s == {0} for s in seen[:6])
    assert all(s == {4} for s in seen[6 + lag + 1 :]), seen


def per_example_losses(logits, labels, segment_ids):
    """Sum of token losses per (row, segment)."""
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none", ignore_index=IGNORE_INDEX
    )
    out = {}
    for r in range(labels.shape[0]):
        for s in segment_ids[r].unique().tolist():
            if s >= 0:
                out[(r, s)] = losses[r][segment_ids[r, 1:] == s].sum()
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rows_give_the_same_loss_as_single_examples(tokenizer, attn):
    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    model = build_causal_lm(
        default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2),
        attn_implementation=attn,
        seed=0,
    ).eval()
    feats = windows(12, length=40)
    batch = collator(feats)
    assert (batch["segment_ids"].max(dim=1).values >= 1).any(), "expected packing"
    with torch.no_grad():
        logits = model(**to_model_inputs(batch)).logits
    packed = per_example_losses(logits, batch["labels"], batch["segment_ids"])
    # Run each packed example alone, unpadded, with its own single-example mask.
    checked = 0
    for (r, s), loss in packed.items():
        keep = batch["segment_ids"][r] == s
        single = {
            k: batch[k][r : r + 1, keep]
            for k in ("input_ids", "labels", "position_ids", "segment_ids", "bidirectional_mask")
        }
        with torch.no_grad():
            alone = model(**to_model_inputs(single)).logits
        expected = per_example_losses(alone, single["labels"], single["segment_ids"])[(0, s)]
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
        checked += 1
    assert checked == len(feats)


def test_flex_block_mask_matches_the_dense_mask(tokenizer):
    from torch.nn.attention.flex_attention import create_mask

    from birdie_hf.packing import packed_attention_allowed, packed_block_mask, packed_mask_mod

    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=256, pad_to_multiple_of=128)
    batch = collator(windows(12, length=60))
    segment_ids, bidirectional = batch["segment_ids"], batch["bidirectional_mask"]
    rows, length = segment_ids.shape
    flex = create_mask(packed_mask_mod(segment_ids, bidirectional), rows, 1, length, length, device="cpu")
    assert torch.equal(flex[:, 0], packed_attention_allowed(segment_ids, bidirectional))
    block = packed_block_mask(segment_ids, bidirectional)
    assert block.shape == (rows, 1, length, length)
    # Block-sparse: memory grows with (length / 128)^2 blocks, not length^2 token pairs.
    assert block.kv_num_blocks.numel() == rows * 1 * (length // 128)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_a_flex_attention_model_reads_the_block_mask_as_sdpa_reads_the_dense_mask(tokenizer, monkeypatch):
    """The GPU fast path trains a `flex_attention` model on `packed_block_mask`s: on a collated batch (packed rows,
    prefixes, padding) its logits equal the sdpa model's on the dense mask, at every real token. Forward only, through
    eager flex attention: the CPU has no flex backward, and inductor's CPU flex kernel is not what a GPU runs."""
    import transformers.integrations.flex_attention as hf_flex
    from torch.nn.attention.flex_attention import flex_attention

    monkeypatch.setattr(
        hf_flex, "compile_friendly_flex_attention", lambda q, k, v, training=False, **kw: flex_attention(q, k, v, **kw)
    )
    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=256, pad_to_multiple_of=128)
    batch = collator(windows(12, length=60))
    assert batch["bidirectional_mask"].any() and (batch["segment_ids"] > 0).any() and (batch["segment_ids"] < 0).any()
    config = default_model_config(tokenizer, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    sdpa = build_causal_lm(config, "sdpa", seed=0).eval()
    flex = build_causal_lm(config, "flex_attention", seed=0).eval()
    flex.load_state_dict(sdpa.state_dict())
    real = batch["segment_ids"] >= 0
    with torch.no_grad():
        dense = sdpa(**to_model_inputs(batch, torch.float32, "dense")).logits
        blocks = flex(**to_model_inputs(batch, torch.float32, "flex")).logits
        causal = flex(**to_model_inputs({**batch, "bidirectional_mask": torch.zeros_like(real)}, mask_format="flex"))
    torch.testing.assert_close(blocks[real], dense[real], rtol=1e-4, atol=1e-5)
    assert (causal.logits[real] - blocks[real]).abs().max() > 1e-3  # the prefixes are read both ways


def test_mask_format_resolution(tokenizer, tmp_path):
    from birdie_hf import BirdieTrainer, BirdieTrainingArguments, build_causal_lm, default_model_config

    config = default_model_config(tokenizer, hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    args = BirdieTrainingArguments(
        output_dir=str(tmp_path), objectives=["copying"], max_length=64, policy="static", attention_mask_format="flex"
    )
    with pytest.raises(ValueError, match="attn_implementation='flex_attention'"):
        BirdieTrainer(model=build_causal_lm(config), args=args, processing_class=tokenizer)
    args.attention_mask_format = "auto"
    trainer = BirdieTrainer(model=build_causal_lm(config, "flex_attention"), args=args, processing_class=tokenizer)
    assert trainer._mask_format == "dense"  # flex has no backward on CPU: auto falls back to the dense mask
    with pytest.raises(ValueError, match="attention_mask_format"):
        BirdieTrainingArguments(output_dir=str(tmp_path), attention_mask_format="sparse")


def test_fixed_objective_batches_ignore_the_epoch_but_training_draws_do_not(tokenizer):
    collator = DataCollatorForBirdie(tokenizer, objectives=SMALL_MIXTURE, max_length=160)
    before, drawn = collator.collate_with_objectives(windows(4), [2, 3, 2, 3]), collator(windows(16))
    collator.mixture.set_epoch(3)
    after, redrawn = collator.collate_with_objectives(windows(4), [2, 3, 2, 3]), collator(windows(16))
    assert torch.equal(before["input_ids"], after["input_ids"])  # a resumed run rebuilds the same held-out batches
    assert not torch.equal(drawn["input_ids"], redrawn["input_ids"])  # repeated windows get fresh corruption


def test_class_docstring_example_runs():
    """The `>>>` example of `DataCollatorForBirdie` is executed as written (a doctest, markdown fences dropped)."""
    import doctest

    from birdie_hf import DataCollatorForBirdie

    text = "\n".join(line for line in DataCollatorForBirdie.__doc__.splitlines() if not line.strip().startswith("```"))
    test = doctest.DocTestParser().get_doctest(text, {}, "DataCollatorForBirdie", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test)
    assert result.attempted >= 5 and result.failed == 0


# -- equal compute per example -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mixture", [["next_token_prediction"], ["copying"], SMALL_MIXTURE])
def test_example_length_makes_the_rows_of_a_batch_independent_of_the_mixture(tokenizer, mixture):
    """With `example_length = max_length / 2` every row holds two examples whatever the objectives: 16 windows of 256
    bases make 8 rows for next-token prediction alone, copying alone (which writes 2 n + 3 tokens) and the default
    mixture, and each example uses nearly its whole budget."""
    collator = DataCollatorForBirdie(tokenizer, objectives=mixture, max_length=520, example_length=260, seed=3)
    batch = collator(windows(16, length=256))
    assert batch["input_ids"].shape[0] == 8
    segments = batch["segment_ids"]
    for row in range(8):
        lengths = torch.bincount(segments[row][segments[row] >= 0])
        lengths = lengths[lengths > 0]
        assert len(lengths) == 2 and lengths.max() <= 260
        assert lengths.min() >= 240  # the window is cropped to the longest input that fits, not shorter
    tokens = int((batch["objective_ids"] >= 0).sum())
    assert 16 * 240 <= tokens <= 16 * 260


def test_example_length_crops_copying_to_half_the_bases_next_token_prediction_reads(tokenizer):
    from birdie_hf.data import window_bases_used

    collator = DataCollatorForBirdie(
        tokenizer, objectives=["next_token_prediction", "copying"], max_length=520, example_length=260
    )
    used = window_bases_used(collator, 256)
    assert used["next_token_prediction"] == 256 and used["copying"] == (260 - 2) // 2  # 2 n + 2 tokens
    with pytest.raises(ValueError, match="example_length"):
        DataCollatorForBirdie(tokenizer, max_length=520, example_length=600)
    # The default mixture's selective copying needs 128 bases, an example of more than 260 tokens: named.
    with pytest.raises(ValueError, match=r"Objective 'selective_copying' .* does not fit in example_length=260"):
        DataCollatorForBirdie(tokenizer, max_length=520, example_length=260)
