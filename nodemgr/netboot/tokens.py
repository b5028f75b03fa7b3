"""One-time install-finished tokens: minted by ``nodeset`` when it arms a node for an
install, consumed by the install-finished callback.

A token is ``secrets.token_urlsafe(32)`` (32 random bytes, 43 URL-safe characters). Only its
SHA-256 hash and an expiry are stored, in nodemgr's own ``nodetoken`` table (one row per
node; a new token replaces the node's older one). ``consume`` compares in constant time and
deletes the row on success, so a token works once (the Ironic agent-token design, made
one-time and hashed; ``../shared/reference/peers.md`` §3.1, §6).
This module must never log, print or store a token in clear, and never accept a token whose
row is missing or expired. ``site.callbacktokens=no`` switches tokens off (xCAT behaviour:
source address and policy only); see :func:`enabled`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

#: Compared against when a node has no token, so a miss costs the same as a wrong token.
_DUMMY_HASH = hashlib.sha256(b"nodemgr-no-token").hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def enabled(store) -> bool:
    """True unless ``site.callbacktokens`` is ``no``/``n``/``0``/``false``/``off`` (any case)."""
    from nodemgr.formats import FALSE_WORDS

    value = (store.site("callbacktokens") or "").strip().lower() or "yes"
    return value not in FALSE_WORDS


def mint(store, node: str, ttl_s: int = 86400) -> str:
    """Create a new token for *node*, replacing any older one.

    Args:
        store: the table store (the write joins the caller's transaction, if any).
        node: node name.
        ttl_s: lifetime in seconds (default one day).
    Returns:
        The token (43 URL-safe characters); only its hash is stored.
    Raises:
        TableError: the store failed.
    """
    token = secrets.token_urlsafe(32)
    store.upsert("nodetoken", {"node": node},
                 {"tokenhash": _hash(token), "expires": str(int(time.time()) + int(ttl_s))})
    return token


def row_values(token: str, ttl_s: int = 86400, now: float | None = None) -> dict[str, str]:
    """The ``nodetoken`` columns (tokenhash, expires) for *token* (used by bulk writers)."""
    base = time.time() if now is None else now
    return {"tokenhash": _hash(token), "expires": str(int(base) + int(ttl_s))}


def consume(store, node: str, token: str) -> bool:
    """Check *token* for *node* and, when valid, delete it (one use).

    Call inside the caller's transaction so the check and the delete are atomic.

    Args:
        store: the table store.
        node: node name.
        token: the token from the callback URL (may be empty).
    Returns:
        True when the token matched the stored hash and had not expired (the row is then
        deleted); False otherwise (nothing changes, except that an expired row is deleted).
    """
    row = store.get("nodetoken", {"node": node})
    stored = (row or {}).get("tokenhash") or _DUMMY_HASH
    match = hmac.compare_digest(_hash(token or ""), stored)
    if row is None or not token or not match:
        return False
    try:
        expires = int(row.get("expires") or 0)
    except ValueError:
        expires = 0
    # delete only the row that was checked: of two concurrent callbacks with the same
    # token, the second one's delete finds nothing (PostgreSQL re-checks the row after the
    # first commits; SQLite serialises writers), so a token never works twice
    if store.delete("nodetoken", {"node": node, "tokenhash": stored}) != 1:
        return False
    return expires > time.time()


def revoke(store, node: str) -> None:
    """Delete *node*'s token, if any (a node leaving an install state is disarmed)."""
    store.delete("nodetoken", {"node": node})
