"""Hugging Face Hub helpers: fail early, before hours of training, when a push cannot work."""

from __future__ import annotations

import os
from typing import Optional


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
    from huggingface_hub import get_token, whoami

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
