"""Identifiers a UA makes up: branches, tags, Call-IDs (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3)."""

from __future__ import annotations

import secrets

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: marks a branch made by an RFC 3261 element


def new_branch() -> str:
    """A branch unique across space and time: the magic cookie plus 64 random bits."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """A tag with at least 32 bits of randomness (RFC 3261 §19.3)."""
    return secrets.token_hex(6)


def new_call_id(host: str = "") -> str:
    """A globally unique Call-ID; the host part is optional (RFC 3261 §8.1.1.4)."""
    local = secrets.token_hex(12)
    return f"{local}@{host}" if host else local
