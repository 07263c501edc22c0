"""🤗 pipelines for Birdie checkpoints: `dna-infilling` and `dna-variant-effect`.

Importing `birdie_hf` registers both tasks with transformers' pipeline registry, so a saved checkpoint folder (or Hub
repo) of any Birdie model loads with no remote code, as an `AutoModelForCausalLM`:

```python
>>> import birdie_hf  # registers the tasks
>>> from transformers import pipeline
>>> fill = pipeline("dna-infilling", model="outputs/birdie")  # doctest: +SKIP
>>> fill("ATGGCTAGC___AGCTAGGATC")["sequence"]  # doctest: +SKIP
>>> effect = pipeline("dna-variant-effect", model="outputs/birdie")  # doctest: +SKIP
>>> effect({"sequence": "ATGGCTAGCTTAGCTAGGATC", "position": 10, "alt": "G"})["bidirectional_llr"]  # doctest: +SKIP
```

The pipelines are thin wrappers over [`infill`] and [`variant_effect`]: a list of inputs is batched by those
functions (`batch_size` rows per forward pass), and every keyword of theirs can be given to the pipeline call or to
`pipeline(...)`.
"""

from __future__ import annotations

from typing import Any, Union

from transformers.pipelines import Pipeline

from .decoding import infill
from .inputs import DNAInputError
from .variants import variant_effect


INFILLING_TASK = "dna-infilling"
VARIANT_EFFECT_TASK = "dna-variant-effect"
_INFILL_PARAMETERS = (
    "mask_char",
    "decoding",
    "num_beams",
    "temperature",
    "top_k",
    "seed",
    "strict",
    "mixture",
    "disable_tqdm",
)
_VARIANT_PARAMETERS = (
    "one_based",
    "bidirectional",
    "causal",
    "reverse_complement_average",
    "window_length",
    "strict",
    "mixture",
    "disable_tqdm",
)


class _BirdiePipeline(Pipeline):
    """Shared plumbing: parameters go to one batched library call; lists are batched by that call."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True
    _parameters: tuple[str, ...] = ()
    _preprocess_parameters: tuple[str, ...] = ()

    def _sanitize_parameters(self, **kwargs):
        unknown = sorted(set(kwargs) - set(self._parameters) - set(self._preprocess_parameters))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameters {unknown}; it takes "
                f"{sorted(self._parameters + self._preprocess_parameters)}."
            )
        preprocess = {"gaps": kwargs.pop("gaps")} if "gaps" in kwargs else {}
        return preprocess, kwargs, {}

    def _run(self, items: list[dict], batch_size: int, **params) -> list[dict]:
        raise NotImplementedError

    def _forward(self, model_inputs: dict, **params) -> dict:
        return {"outputs": self._run([model_inputs], batch_size=1, **params)}

    def postprocess(self, model_outputs: dict) -> dict:
        return model_outputs["outputs"][0]

    def __call__(self, inputs, **kwargs):
        """Run on one input or a list of them (batched, `batch_size` per forward pass, default 8)."""
        if isinstance(inputs, list) and self._is_single(inputs):
            inputs = tuple(inputs)  # one variant given as a list; transformers would read a list as a batch
        if not isinstance(inputs, (list, str, dict, tuple)):
            try:
                inputs = list(inputs)  # a generator or a Dataset column: batched like a list
            except TypeError:
                raise DNAInputError(
                    f"{self.task or type(self).__name__} takes a DNA input (or a list of them), got "
                    f"{type(inputs).__name__} {inputs!r}."
                ) from None
        if not isinstance(inputs, list):
            return super().__call__(inputs, **kwargs)
        kwargs.pop("num_workers", None)
        batch_size = kwargs.pop("batch_size", None) or self._batch_size or 8
        preprocess_params, forward_params, _ = self._sanitize_parameters(**kwargs)
        preprocess_params = {**self._preprocess_params, **preprocess_params}
        forward_params = {**self._forward_params, **forward_params}
        items = [self.preprocess(item, **preprocess_params) for item in inputs]
        return self._run(items, batch_size=batch_size, **forward_params)

    @staticmethod
    def _is_single(inputs: list) -> bool:
        return False


class DNAInfillingPipeline(_BirdiePipeline):
    """Fill gaps in DNA with a Birdie checkpoint (see [`infill`]).

    Inputs: a DNA string with gaps marked by `_` (`"ACGT___ACGT"`), a dict `{"sequence": ..., "gaps": [(start, end),
    ...]}`, or a list of either. Parameters: `gaps` (for a string input), `mask_char`, `decoding` (`"greedy"`,
    `"sample"`, `"beam"`), `num_beams`, `temperature`, `top_k`, `seed`, `strict`, `mixture`, `batch_size`.

    Returns, per input, a dict: `sequence` (filled), `gaps`, `fills` (one string per gap), `probabilities` (of each
    filled base) and `log_likelihood`.
    """

    _parameters = _INFILL_PARAMETERS
    _preprocess_parameters = ("gaps",)

    def preprocess(self, inputs: Union[str, dict], gaps=None) -> dict:
        if isinstance(inputs, dict):
            if "sequence" not in inputs:
                raise DNAInputError(f"A dna-infilling input dict needs a 'sequence' key, got keys {sorted(inputs)}.")
            return {"sequence": inputs["sequence"], "gaps": inputs.get("gaps", gaps)}
        return {"sequence": inputs, "gaps": gaps}

    def _run(self, items: list[dict], batch_size: int, **params) -> list[dict]:
        results = infill(
            self.model,
            self.tokenizer,
            [item["sequence"] for item in items],
            gaps=[item["gaps"] for item in items],
            batch_size=batch_size,
            disable_tqdm=params.pop("disable_tqdm", len(items) <= batch_size),
            **params,
        )
        return [result.to_dict() for result in results]


class DNAVariantEffectPipeline(_BirdiePipeline):
    """Score substitutions with a Birdie checkpoint (see [`variant_effect`]).

    Inputs: a dict `{"sequence": ..., "position": ..., "alt": ...}` with an optional `"ref"` (checked against the
    sequence), a `(sequence, position, alt)` or `(sequence, position, ref, alt)` tuple, or a list of those. Positions
    are 0-based; `one_based=True` reads them as VCF does. Parameters: `one_based`, `bidirectional`, `causal`,
    `reverse_complement_average`, `window_length`, `strict`, `mixture`, `batch_size`.

    Returns, per input, a dict: `position`, `ref`, `alt`, `bidirectional_llr` (both flanks), `causal_llr` (whole
    window, left to right) and `causal_site_llr` (the site given its left flank), in nats.
    """

    _parameters = _VARIANT_PARAMETERS

    @staticmethod
    def _is_single(inputs: list) -> bool:
        return (
            len(inputs) in (3, 4)
            and isinstance(inputs[0], str)
            and not isinstance(inputs[1], (str, dict, list, tuple))
        )

    def preprocess(self, inputs: Any, gaps=None) -> dict:
        if isinstance(inputs, dict):
            missing = sorted({"sequence", "position", "alt"} - set(inputs))
            if missing:
                raise DNAInputError(
                    f"A dna-variant-effect input dict needs the keys sequence, position and alt; missing {missing}."
                )
            return {key: inputs[key] for key in ("sequence", "position", "ref", "alt") if key in inputs}
        if isinstance(inputs, (tuple, list)) and len(inputs) == 3:
            return dict(zip(("sequence", "position", "alt"), inputs))
        if isinstance(inputs, (tuple, list)) and len(inputs) == 4:
            return dict(zip(("sequence", "position", "ref", "alt"), inputs))
        raise DNAInputError(
            f"A dna-variant-effect input must be a dict with sequence, position and alt, or a "
            f"(sequence, position, alt) tuple; got {inputs!r}."
        )

    def _run(self, items: list[dict], batch_size: int, **params) -> list[dict]:
        results = variant_effect(
            self.model,
            self.tokenizer,
            items,
            batch_size=batch_size,
            disable_tqdm=params.pop("disable_tqdm", len(items) <= batch_size),
            **params,
        )
        return [result.to_dict() for result in results]


class _NoDefaultModel(dict):
    """The `default` entry of our registered tasks: transformers looks a default model up there when `pipeline(task)`
    gets no `model`, and an absent entry ended in `KeyError: 'default'`. There is no default Birdie checkpoint to
    download, so the lookup raises a one-line error saying what to pass instead."""

    def __init__(self, task: str):
        super().__init__()
        self.task = task

    def _refuse(self, *args):
        raise ValueError(
            f"pipeline({self.task!r}) needs a model: birdie_hf has no default checkpoint. Pass one, e.g. "
            f"pipeline({self.task!r}, model='outputs/birdie-dna-tiny') (a folder or Hub id of a checkpoint pre-trained "
            "with Birdie's infilling objective)."
        )

    __contains__ = __getitem__ = get = _refuse


def register_pipelines() -> None:
    """Register `dna-infilling` and `dna-variant-effect` with `transformers.pipelines.PIPELINE_REGISTRY` (loading
    checkpoints with `AutoModelForCausalLM`). Called when `birdie_hf` is imported; calling it again does nothing."""
    from transformers import AutoModelForCausalLM
    from transformers.pipelines import PIPELINE_REGISTRY

    for task, pipeline_class in (
        (INFILLING_TASK, DNAInfillingPipeline),
        (VARIANT_EFFECT_TASK, DNAVariantEffectPipeline),
    ):
        if PIPELINE_REGISTRY.supported_tasks.get(task, {}).get("impl") is pipeline_class:
            continue
        PIPELINE_REGISTRY.register_pipeline(
            task, pipeline_class=pipeline_class, pt_model=AutoModelForCausalLM, type="text"
        )
        PIPELINE_REGISTRY.supported_tasks[task]["default"] = _NoDefaultModel(task)
