"""Hub access: fail early, before hours of training, when a push cannot work or a model path is wrong; the Hub ids of
the Nucleotide Transformer benchmark.

Depends on nothing else in the package, so every module that loads a checkpoint (`modeling`, the evaluation's
fine-tuning) imports it, while `birdie_hf.hub` (model cards) imports the evaluation.
"""

from __future__ import annotations

import os
from typing import Optional

from huggingface_hub import get_token, whoami
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import AutoConfig


#: The revised Nucleotide Transformer benchmark (18 tasks) on the Hub, recommended over the original.
NT_REVISED_REPO = "InstaDeepAI/nucleotide_transformer_downstream_tasks_revised"
NT_TASKS = (
    "H2AFZ",
    "H3K27ac",
    "H3K27me3",
    "H3K36me3",
    "H3K4me1",
    "H3K4me2",
    "H3K4me3",
    "H3K9ac",
    "H3K9me3",
    "H4K20me1",
    "enhancers",
    "enhancers_types",
    "promoter_all",
    "promoter_no_tata",
    "promoter_tata",
    "splice_sites_acceptors",
    "splice_sites_all",
    "splice_sites_donors",
)


class HubAccessError(RuntimeError):
    """Raised when `--push_to_hub` is asked for but no token or no network is available."""


def check_hub_access(repo_id: str, token: Optional[str] = None) -> str:
    """Check that a Hub token is available and valid before training starts.

    Args:
        repo_id (`str`): the repository that will be pushed to (only used in messages).
        token (`str`, *optional*): a token; otherwise `HF_TOKEN` or the token saved by `hf auth login`.

    Returns:
        `str`: the user name the token belongs to.

    Raises:
        [`HubAccessError`]: no token, an invalid token, or the Hub cannot be reached. The message never contains
        the token itself.
    """
    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubAccessError(
            f"--push_to_hub was set for {repo_id!r} but no Hugging Face token was found: run `hf auth login` or set "
            "HF_TOKEN. Nothing was trained yet; drop --push_to_hub to train locally."
        )
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise HubAccessError(f"--push_to_hub was set for {repo_id!r} but HF_HUB_OFFLINE is on.")
    try:
        return whoami(token=token)["name"]
    except Exception as error:  # network errors and HTTP errors alike
        kind = type(error).__name__
        raise HubAccessError(
            f"--push_to_hub was set for {repo_id!r} but the Hub could not be reached or refused the token ({kind}). "
            "Nothing was trained yet; check your network and token, or drop --push_to_hub."
        ) from None


def check_model_path(path: str) -> None:
    """Refuse a model that is neither a local folder nor a valid Hub model id, before anything is downloaded.

    transformers reads any string it cannot find locally as a Hub id, so a mistyped local path such as
    `../outputs/run` would otherwise fail with "Repo id must be in the form 'repo_name' or 'namespace/repo_name'".

    Args:
        path (`str`): a local checkpoint folder or a Hub model id (`name` or `namespace/name`).

    Raises:
        `FileNotFoundError`: `path` does not exist locally and cannot be a Hub id.
        `NotADirectoryError`: `path` is a file, not a checkpoint folder.
    """
    if os.path.isdir(path):
        return
    if os.path.exists(path):
        raise NotADirectoryError(
            f"Model {path!r} is a file, not a checkpoint folder (one with config.json and the "
            "weights, as written by save_pretrained)."
        )
    try:
        validate_repo_id(path)
    except HFValidationError:
        raise FileNotFoundError(
            f"Model {path!r} does not exist: it is neither a local folder nor a valid Hub model "
            "id (`name` or `namespace/name`). Check the path."
        ) from None


def load_model_config(path: str, **kwargs):
    """`AutoConfig.from_pretrained(path, **kwargs)`, with a clear message when `path` is missing.

    Raises:
        `FileNotFoundError`, `NotADirectoryError`: see [`check_model_path`].
        `OSError`: `path` is not a local folder and could not be loaded from the Hub as a model id.
    """
    check_model_path(path)
    try:
        return AutoConfig.from_pretrained(path, **kwargs)
    except OSError as error:
        if os.path.isdir(path):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(
            f"Model {path!r} is not a local folder, and loading it from the Hub as a model id failed: {reason}"
        ) from error


#: Files a saved tokenizer writes; a local checkpoint folder without any has no tokenizer.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def load_tokenizer(path: str, **kwargs):
    """`AutoTokenizer.from_pretrained(path, **kwargs)`, refusing a local folder without tokenizer files by name
    (transformers would fall back to a slow tokenizer and ask for `sentencepiece`).

    Raises:
        `FileNotFoundError`: `path` is a local folder holding neither `tokenizer.json` nor `tokenizer_config.json`.
    """
    from transformers import AutoTokenizer

    if os.path.isdir(path) and not any(os.path.isfile(os.path.join(path, name)) for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{path!r} has no tokenizer files ({' or '.join(TOKENIZER_FILES)}): save the tokenizer into the model's "
            "folder (tokenizer.save_pretrained(folder); recipes/pretrain.py does), or copy the files of the tokenizer "
            "it was trained with."
        )
    return AutoTokenizer.from_pretrained(path, **kwargs)
