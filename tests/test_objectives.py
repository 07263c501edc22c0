import numpy as np
import pytest

from birdie_hf.objectives import (
    DEFAULT_MIXTURE,
    IGNORE_INDEX,
    OBJECTIVE_REGISTRY,
    ObjectiveConfigError,
    ObjectiveSpec,
    SpecialTokenIds,
    parse_mixture,
)
from birdie_hf.objectives.spans import num_noise_spans, random_segmentation


@pytest.fixture(scope="module")
def special(tokenizer):
    return SpecialTokenIds.from_tokenizer(tokenizer)


def make(special, name, **settings):
    return ObjectiveSpec(name, settings).build(special)


def rng(seed=0):
    return np.random.default_rng(seed)


X = np.array([4, 5, 6, 7, 4, 4, 5, 5, 6, 6, 7, 7, 4, 5, 6, 7, 7, 6, 5, 4], dtype=np.int64)


def split_target(example):
    prefix = example.input_ids[: example.prefix_length]
    target = example.input_ids[example.prefix_length :]
    assert (example.labels[: example.prefix_length] == IGNORE_INDEX).all()
    assert (example.labels[example.prefix_length :] == target).all()
    return prefix, target


def test_registry_has_birdies_full_set():
    assert set(OBJECTIVE_REGISTRY) == {
        "next_token_prediction",
        "prefix_lm",
        "infilling",
        "deshuffling",
        "copying",
        "selective_copying",
        "autoencoding",
    }


def test_next_token_prediction(special):
    example = make(special, "next_token_prediction")(np.array([4, 5, 6, 7]), rng())
    assert example.input_ids.tolist() == [4, 5, 6, 7]
    assert example.labels.tolist() == [IGNORE_INDEX, 5, 6, 7]
    assert example.prefix_length == 0


def test_prefix_lm_hand_checked(special):
    example = make(special, "prefix_lm", min_prefix_fraction=0.5, max_prefix_fraction=0.5)(
        np.array([4, 5, 6, 7]), rng()
    )
    p = special.prompts["prefix_lm"]
    assert example.input_ids.tolist() == [p, 4, 5, 6, 7]
    assert example.labels.tolist() == [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 6, 7]
    assert example.prefix_length == 3


def test_copying_hand_checked(special):
    example = make(special, "copying")(np.array([4, 5, 6]), rng())
    p, eos = special.prompts["copying"], special.eos
    assert example.input_ids.tolist() == [p, 4, 5, 6, 4, 5, 6, eos]
    assert example.labels.tolist() == [IGNORE_INDEX] * 4 + [4, 5, 6, eos]
    assert example.prefix_length == 4


@pytest.mark.parametrize("rate, span", [(0.15, 3), (0.5, 3), (0.15, 8), (0.5, 64)])
def test_infilling_target_fills_the_sentinels(special, rate, span):
    objective = make(special, "infilling", corruption_rate=rate, mean_span_length=span)
    for seed in range(5):
        example = objective(X, rng(seed))
        prefix, target = split_target(example)
        assert prefix[0] == special.prompts["infilling"] and target[-1] == special.eos
        sentinels = [t for t in prefix if t in special.sentinels]
        assert sentinels == list(special.sentinels[: len(sentinels)])
        # Put each target span back in place of its sentinel: the original comes back.
        spans, current = {}, None
        for token in target[:-1]:
            if token in special.sentinels:
                current = token
                spans[current] = []
            else:
                spans[current].append(token)
        restored = [t for token in prefix[1:] for t in (spans[token] if token in spans else [token])]
        assert restored == X.tolist()
        assert len(example) <= objective.output_length(len(X))
        noise, num_spans = num_noise_spans(len(X), rate, span, len(special.sentinels))
        assert len(sentinels) == num_spans and sum(len(s) for s in spans.values()) == noise


def test_infilling_is_capped_by_sentinels(tokenizer):
    from birdie_hf import build_dna_tokenizer

    few = SpecialTokenIds.from_tokenizer(build_dna_tokenizer(num_sentinels=3))
    example = make(few, "infilling", corruption_rate=0.5, mean_span_length=1)(X, rng())
    assert sum(t in few.sentinels for t in example.input_ids) == 2 * 3


def test_deshuffling(special):
    objective = make(special, "deshuffling", mean_span_length=4, shuffle_fraction=1.0)
    example = objective(X, rng(1))
    prefix, target = split_target(example)
    assert target[:-1].tolist() == X.tolist()
    assert sorted(prefix[1:].tolist()) == sorted(X.tolist())
    assert prefix[1:].tolist() != X.tolist()
    assert example.prefix_length == 1 + len(X)


def test_selective_copying_answers_match_the_queries(special):
    objective = make(special, "selective_copying", min_spans=2, max_spans=3, span_length=3, flank_length=2)
    context = np.random.default_rng(0).integers(4, 8, size=40)
    for seed in range(6):
        example = objective(context, rng(seed))
        prefix, target = split_target(example)
        body = prefix[1:]
        query_first = body[0] in special.sentinels
        queries = body[: len(body) - 40] if query_first else body[40:]
        assert (body[len(body) - 40 :] if query_first else body[:40]).tolist() == context.tolist()
        queries = queries.reshape(-1, 5)
        answers = target[:-1].reshape(-1, 4)
        assert 2 <= len(queries) <= 3 and len(answers) == len(queries)
        for j, (query, answer) in enumerate(zip(queries, answers)):
            assert query[0] == answer[0] == special.sentinels[j]
            window = np.concatenate([query[1:3], answer[1:], query[3:5]]).tolist()
            assert any(context[i : i + 7].tolist() == window for i in range(34))


def test_autoencoding_reconstructs_original(special):
    for shuffle in (False, True):
        objective = make(special, "autoencoding", corruption_rate=0.3, mean_span_length=2, shuffle=shuffle)
        example = objective(X, rng(2))
        prefix, target = split_target(example)
        assert target[:-1].tolist() == X.tolist()
        clean = [t for t in prefix[1:] if t not in special.sentinels]
        noise, spans = num_noise_spans(len(X), 0.3, 2, len(special.sentinels))
        assert len(clean) == len(X) - noise
        assert sum(t in special.sentinels for t in prefix) == spans


def test_every_default_entry_is_deterministic_and_fits(tokenizer, special):
    for spec in parse_mixture(None):
        objective = spec.build(special)
        objective.validate(512)
        n = objective.source_length(512)
        window = np.random.default_rng(0).integers(4, 8, size=n)
        a, b = objective(window, rng(7)), objective(window, rng(7))
        assert a.input_ids.tolist() == b.input_ids.tolist() and a.prefix_length == b.prefix_length
        assert len(a) <= 512, spec.name
        assert a.prefix_length == 0 or a.input_ids[0] == special.prompts[spec.objective]


def test_validate_too_short(special):
    objective = make(special, "selective_copying", max_spans=4, span_length=16, flank_length=8)
    with pytest.raises(ObjectiveConfigError, match="max_length=64"):
        objective.validate(64)
    with pytest.raises(ObjectiveConfigError, match="window_length=100"):
        objective.validate(1024, window_length=100)
    make(special, "copying").validate(4)
    with pytest.raises(ObjectiveConfigError, match="'copying'"):
        make(special, "copying").validate(3)


@pytest.mark.parametrize(
    "entry, match",
    [
        ("nope", "Unknown objective 'nope'"),
        ({"objective": "infilling", "span": 3}, r"unknown settings \['span'\]"),
        ({"objective": "infilling", "corruption_rate": 1.5}, "corruption_rate must be in"),
        ({"objective": "copying", "weight": -1}, "weight -1"),
        ({"objective": "prefix_lm", "min_prefix_fraction": 0.9, "max_prefix_fraction": 0.1}, "exceeds"),
    ],
)
def test_bad_specs(special, entry, match):
    with pytest.raises(ObjectiveConfigError, match=match):
        parse_mixture([entry])[0].build(special)


def test_mixture_level_errors():
    with pytest.raises(ObjectiveConfigError, match="unique"):
        parse_mixture(["copying", "copying"])
    with pytest.raises(ObjectiveConfigError, match="zero"):
        parse_mixture([{"objective": "copying", "weight": 0}])
    assert len(parse_mixture(None)) == len(DEFAULT_MIXTURE)


def test_random_segmentation():
    lengths = random_segmentation(rng(), 10, 4)
    assert lengths.sum() == 10 and (lengths >= 1).all() and len(lengths) == 4
    with pytest.raises(ValueError):
        random_segmentation(rng(), 3, 4)


# -- span layouts ------------------------------------------------------------------------------------------------------
def test_alternating_layouts_always_mask_one_end_and_interior_layouts_never_do():
    from birdie_hf.objectives.spans import sample_noise_layout

    rng = np.random.default_rng(0)
    for _ in range(500):
        alternating = sample_noise_layout(rng, 64, 0.15, 3.0, 128)
        assert alternating.is_noise[0] != alternating.is_noise[-1]  # exactly one end masked
        interior = sample_noise_layout(rng, 64, 0.15, 3.0, 128, "interior")
        assert not interior.is_noise[0] and not interior.is_noise[-1]
        assert (
            interior.lengths[interior.is_noise].sum()
            == round(0.15 * 64)
            == alternating.lengths[alternating.is_noise].sum()
        )
        assert (interior.lengths > 0).all() and interior.lengths.sum() == 64


def test_interior_span_count_is_one_plus_a_binomial_with_the_requested_mean():
    """15% of 256 bases in spans of mean 3: 38 masked bases, m = 13 spans on average, counts 1 + Binomial(24, 1/2)."""
    from math import comb

    from birdie_hf.objectives.spans import sample_noise_layout, span_count_range

    assert span_count_range(256, 0.15, 3.0, 128, "interior") == (38, 1, 25)
    assert span_count_range(256, 0.15, 3.0, 128) == (38, 13, 13)
    rng = np.random.default_rng(1)
    counts = np.array([sample_noise_layout(rng, 256, 0.15, 3.0, 128, "interior").is_noise.sum() for _ in range(4000)])
    assert counts.mean() == pytest.approx(13, abs=0.15) and counts.var() == pytest.approx(6.0, rel=0.15)
    observed = np.bincount(counts, minlength=26)[13]
    assert observed / 4000 == pytest.approx(comb(24, 12) / 2**24, abs=0.02)


def test_a_single_span_lies_inside_the_window_with_both_flanks_known():
    """5% of 256 bases in spans of mean 32: one span of 13 bases, at an end for the alternating layout, anywhere
    inside for the interior one (as the single gaps of inference and variant scoring)."""
    from birdie_hf.objectives.spans import sample_noise_layout

    rng = np.random.default_rng(2)
    starts = []
    for _ in range(2000):
        alternating = sample_noise_layout(rng, 256, 0.05, 32.0, 128)
        noise = alternating.starts[alternating.is_noise]
        assert len(noise) == 1 and noise[0] in (0, 256 - 13)
        interior = sample_noise_layout(rng, 256, 0.05, 32.0, 128, "interior")
        (start,) = interior.starts[interior.is_noise]
        assert 1 <= start <= 256 - 13 - 1
        starts.append(start)
    # Uniform over the 242 interior positions: both halves about equally often.
    assert np.mean(np.array(starts) < 128) == pytest.approx(0.5, abs=0.05)


def test_infilling_with_interior_layouts_fits_its_declared_length(special):
    objective = make(special, "infilling", corruption_rate=0.15, mean_span_length=3, span_layout="interior")
    rng = np.random.default_rng(3)
    tokens = rng.integers(4, 8, size=200)
    lengths = [len(objective(tokens, rng).input_ids) for _ in range(300)]
    assert max(lengths) <= objective.output_length(200)
    assert len(set(lengths)) > 5  # the number of spans varies
    with pytest.raises(ObjectiveConfigError, match="span_layout"):
        make(special, "infilling", span_layout="middle")
