"""Default model: a small native Llama (RoPE, RMSNorm, SwiGLU), as in the BirdieDNA recipe.

Checkpoints are plain `LlamaForCausalLM`, so `AutoModel*.from_pretrained` and Hub widgets load them without remote
code. Any `AutoModelForCausalLM` that accepts 4-D additive attention masks and `position_ids` works with
[`BirdieTrainer`].
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from typing import Iterator, Optional

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedModel, PreTrainedTokenizerBase

from .hub_io import load_model_config, load_tokenizer
from .tokenizer import add_birdie_tokens


logger = logging.getLogger(__name__)

#: Class-name endings of decoder checkpoints (`LlamaForCausalLM`, `GPT2LMHeadModel`, ...) in `config.architectures`.
_CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def default_model_config(
    tokenizer,
    *,
    hidden_size: int = 128,
    num_hidden_layers: int = 4,
    num_attention_heads: int = 4,
    intermediate_size: Optional[int] = None,
    max_position_embeddings: int = 2048,
    **kwargs,
) -> LlamaConfig:
    """A `LlamaConfig` sized for the DNA tokenizer.

    Args:
        tokenizer: the DNA tokenizer (its size, pad, bos and eos ids are copied into the config).
        hidden_size (`int`, *optional*, defaults to `128`): model width (BirdieDNA uses 512).
        num_hidden_layers (`int`, *optional*, defaults to `4`): decoder layers.
        num_attention_heads (`int`, *optional*, defaults to `4`): attention heads.
        intermediate_size (`int`, *optional*): MLP width, defaults to `4 * hidden_size`.
        max_position_embeddings (`int`, *optional*, defaults to `2048`): longest row in tokens.
        kwargs: any other `LlamaConfig` field. `tie_word_embeddings` defaults to `False` (an untied output head, as
            in the BirdieDNA authors' code): with tied embeddings the output layer's gradient, which early in training
            asks every position for the same base composition, pulls the four base embeddings onto one direction;
            the model then cannot tell the bases apart and stays at the composition loss. That happened to 4 of 6
            runs of the `dna` arms of the pre-registered experiment (`benchmarks/README.md`, "Training health").
            `use_cache` keeps transformers' default, `True`, so a saved checkpoint generates with its KV cache
            (BirdieTrainer's training passes ask for no cache).
    """
    if hidden_size % num_attention_heads:
        raise ValueError(
            f"hidden_size ({hidden_size}) must be divisible by num_attention_heads ({num_attention_heads})."
        )
    return LlamaConfig(
        vocab_size=kwargs.pop("vocab_size", len(tokenizer)),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=kwargs.pop("num_key_value_heads", num_attention_heads),
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=kwargs.pop("tie_word_embeddings", False),
        use_cache=kwargs.pop("use_cache", True),
        **kwargs,
    )


def resolve_attn_implementation(attn_implementation: str, flex: Optional[bool] = None) -> str:
    """`"auto"` -> `"flex_attention"` when `flex` (by default: when CUDA is available; the recipe passes whether the
    GPU fast path is on), where packed rows become block masks (the blocks no example spans are skipped, and the fast
    path compiles it), `"sdpa"` otherwise; any other name as given."""
    if attn_implementation != "auto":
        return attn_implementation
    if flex is None:
        flex = torch.cuda.is_available()
    return "flex_attention" if flex else "sdpa"


def build_causal_lm(config, attn_implementation: str = "sdpa", seed: Optional[int] = None) -> PreTrainedModel:
    """A freshly initialised `AutoModelForCausalLM` for `config` with the given attention backend (`"auto"`: see
    [`resolve_attn_implementation`])."""
    if seed is not None:
        from transformers import set_seed

        set_seed(seed)
    return AutoModelForCausalLM.from_config(
        config, attn_implementation=resolve_attn_implementation(attn_implementation)
    )


def cast_parameters(model: PreTrainedModel, dtype: torch.dtype) -> PreTrainedModel:
    """`model` with its floating-point parameters in `dtype` and its buffers left as they are, as
    `from_pretrained(dtype=...)` leaves them: `model.to(torch.bfloat16)` would also round the rotary embedding's
    float32 `inv_freq`, so positions would be read with angles off by up to 0.45 rad at 1,023 tokens, unlike in
    training (bf16 autocast keeps them float32). Returns `model`, changed in place."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            parameter.data = parameter.data.to(dtype)
    return model


def causal_lm_config(path: str):
    """The config of the checkpoint at `path` (local folder or Hub id), refusing one saved as anything but a causal LM
    (its `config.architectures` name no `*ForCausalLM` or `*LMHeadModel` class) with a `ValueError` naming it."""
    config = load_model_config(path)
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(name.endswith(_CAUSAL_LM_SUFFIXES) for name in architectures):
        raise ValueError(
            f"{path!r} holds a {config.model_type!r} model saved as {architectures}, not a causal LM; Birdie "
            "pre-training and evaluation need a decoder checkpoint such as LlamaForCausalLM."
        )
    return config


@contextlib.contextmanager
def pickled_weights_refused(path: str) -> Iterator[None]:
    """Turn torch's refusal of a `pytorch_model.bin` pickled with Python objects (raised while `from_pretrained`
    reads `path`) into a `ValueError` that names the folder and the way on."""
    try:
        yield
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path!r} holds weights pickled with Python objects besides tensors (a `pytorch_model.bin` that torch "
            "refuses to read with weights_only=True, since unpickling it could run code). birdie_hf does not load such "
            "files. If you trust their source, convert them once to safetensors (load with torch.load(..., "
            "weights_only=False) and save_pretrained(..., safe_serialization=True)) and pass that folder."
        ) from error


def load_causal_lm_checkpoint(
    path: str, attn_implementation: str = "sdpa"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal-LM checkpoint and its tokenizer, ready for Birdie continual pre-training.

    The tokenizer gets the Birdie prompt and sentinel tokens it lacks ([`add_birdie_tokens`]) and the model's
    embeddings are resized to match, so an older Birdie checkpoint or any character-level DNA decoder can continue
    training on the full objective mixture.

    Args:
        path (`str`): a local checkpoint folder or a Hub model id, holding the model and its tokenizer.
        attn_implementation (`str`, *optional*, defaults to `"sdpa"`): the attention backend (`"sdpa"`, `"eager"`,
            `"flex_attention"` or `"auto"`, see [`resolve_attn_implementation`]).

    Returns:
        `tuple[PreTrainedModel, PreTrainedTokenizerBase]`: the model (an `AutoModelForCausalLM`) and the tokenizer.

    Raises:
        `FileNotFoundError`, `NotADirectoryError`, `OSError`: `path` is missing or cannot be loaded (see
            [`load_model_config`]).
        `ValueError`: the checkpoint is not a causal LM (its `config.architectures` name no `*ForCausalLM` or
            `*LMHeadModel` class, or `AutoModelForCausalLM` cannot load its model type), or its tokenizer is not
            character level (A, C, G and T must be single tokens).
    """

    config = causal_lm_config(path)
    architectures = list(getattr(config, "architectures", None) or [])
    tokenizer = load_tokenizer(path)
    split = [base for base in "ACGT" if len(tokenizer(base, add_special_tokens=False)["input_ids"]) != 1]
    if split:
        raise ValueError(
            f"The tokenizer of {path!r} is not character level: {split} are not single tokens; Birdie objectives work "
            "on single bases (A, C, G and T must each be one token)."
        )
    added = add_birdie_tokens(tokenizer)
    with pickled_weights_refused(path):
        try:
            model = AutoModelForCausalLM.from_pretrained(
                path, config=config, attn_implementation=resolve_attn_implementation(attn_implementation)
            )
        except ValueError as error:
            if architectures:
                raise
            raise ValueError(
                f"Cannot load {path!r} (a {config.model_type!r} model saved without `architectures`) as a causal LM "
                f"for continual pre-training: {error}"
            ) from error
    if added:
        model.resize_token_embeddings(len(tokenizer))
        logger.info("Added %d Birdie tokens to the tokenizer of %r and resized the embeddings.", added, path)
    return model, tokenizer
