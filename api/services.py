"""API tokens: created (the secret shown once), found by the secret, revoked.

A token is ``clr_<prefix>_<secret>``: the prefix (random, unique) finds the
row; only the SHA-256 of the whole token is stored, so a copy of the database
lets nobody in. 256 bits of randomness need no slow hash (they cannot be
guessed), and a digest keeps each request's check to one indexed read.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

from api.models import ApiToken, IdempotentResponse, Scope
from pipeline.access import can_manage
from pipeline.models import User

TOKEN_PREFIX = "clr_"  # noqa: S105 - a label, not a secret
# ``last_used_at`` is written at most this often per token: a busy program
# does not turn every read into a write.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token, shown once and never stored


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_prefix() -> str:
    """Twelve random hex characters, the first a letter: all digits (one prefix
    in ~280), twelve of them could pass the Luhn check as a card number (one in
    ~2,800), and the prefix is stored and shown as it is. A letter first leaves
    at most eleven digits in a row, fewer than any card number."""
    return secrets.choice("abcdef") + secrets.token_hex(6)[1:]


def api_token_create(*, user: User, name: str, scope: str, verified: bool) -> NewToken:
    """A new token for ``user``. A manager (or superuser) creates one only from a
    session their second factor verified (``verified``): a token is a way in that
    skips the code, so it is given out only by a session that asked for it."""
    if can_manage(user) and not verified:
        raise PermissionDenied("Verify your two-factor code before creating an API token.")
    if scope not in Scope.values:
        raise ValueError(f"Unknown scope {scope!r}.")
    prefix = new_prefix()
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name.strip(), scope=scope, prefix=prefix, digest=_digest(raw)
    )
    return NewToken(token=token, secret=raw)


def api_token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of ``user``'s own tokens; False if there was none live."""
    return bool(
        ApiToken.objects.live().filter(pk=token_id, user=user).update(revoked_at=timezone.now())
    )


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The live token of an active person for this secret, or None (one query,
    and an UPDATE of ``last_used_at`` at most once a minute)."""
    if not raw.startswith(TOKEN_PREFIX) or raw.count("_") < 2:
        return None
    prefix = raw[len(TOKEN_PREFIX) :].split("_", 1)[0]
    token = (
        ApiToken.objects.live()
        .select_related("user")
        .filter(prefix=prefix, user__is_active=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.digest, _digest(raw)):
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


def idempotency_cutoff():
    """Answers kept before this moment are past CLEARED_API_IDEMPOTENCY_HOURS."""
    return timezone.now() - timedelta(hours=settings.CLEARED_API_IDEMPOTENCY_HOURS)


def idempotency_prune() -> int:
    """Forget the answers older than the window; how many went (an hourly task)."""
    deleted, _ = IdempotentResponse.objects.filter(created_at__lt=idempotency_cutoff()).delete()
    return deleted
