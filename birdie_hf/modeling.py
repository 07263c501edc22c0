"""Default model: a small native Llama (RoPE, RMSNorm, SwiGLU), as in the BirdieDNA recipe.

Checkpoints are plain `LlamaForCausalLM`, so `AutoModel*.from_pretrained` and Hub widgets load them without remote
code. Any `AutoModelForCausalLM` that accepts 4-D additive attention masks and `position_ids` works with
[`BirdieTrainer`].
"""

from __future__ import annotations

from typing import Optional

from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedModel


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
        kwargs: any other `LlamaConfig` field.
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
        tie_word_embeddings=kwargs.pop("tie_word_embeddings", True),
        use_cache=kwargs.pop("use_cache", False),
        **kwargs,
    )


def build_causal_lm(config, attn_implementation: str = "sdpa", seed: Optional[int] = None) -> PreTrainedModel:
    """A freshly initialised `AutoModelForCausalLM` for `config` with the given attention backend."""
    if seed is not None:
        from transformers import set_seed

        set_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
