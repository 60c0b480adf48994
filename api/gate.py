"""What every API request passes before its endpoint: the token, the rate
limit, the scope, and ``Idempotency-Key`` on a POST.

It wraps each endpoint's URL (api/urls.py), so a refusal here never reaches
django-ninja, and a replayed POST never reaches a service.
"""

import hashlib
import time
import zoneinfo
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from api.models import IdempotentResponse
from api.problems import problem
from api.services import api_token_authenticate, idempotency_cutoff
from pipeline.history import acting_via

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
KEY_MAX_CHARS = 255
WINDOW_SECONDS = 60


def _bearer(request: HttpRequest) -> str:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else ""


def _over_limit(token_id: int) -> int:
    """Seconds until the token's window ends if it is past ``CLEARED_API_RATE``
    requests this minute, else 0. A cache counter per token and minute: the
    embedded default's in-process cache, or Redis when CACHE_URL is set (a
    Redis outage is a miss there, so the limit lapses rather than the API)."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"api-rate:{token_id}:{window}"
    cache.add(key, 0, WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # the cache forgot it (or is down): count this one only
        count = 1
    if count <= settings.CLEARED_API_RATE:
        return 0
    return max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)


def _request_digest(request: HttpRequest) -> str:
    return hashlib.sha256(
        request.method.encode() + b" " + request.get_full_path().encode() + b"\n" + request.body
    ).hexdigest()


def _replay(kept: IdempotentResponse) -> HttpResponse:
    response = HttpResponse(kept.body, status=kept.status, content_type=kept.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def _idempotent(request: HttpRequest, view, args, kwargs) -> HttpResponse:
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        return view(request, *args, **kwargs)
    if len(key) > KEY_MAX_CHARS:
        return problem(
            422,
            f"Idempotency-Key is at most {KEY_MAX_CHARS} characters.",
            errors={"Idempotency-Key": [f"At most {KEY_MAX_CHARS} characters."]},
        )
    digest = _request_digest(request)
    # Kept as its SHA-256: a client's key is free text, and could be a card number.
    key = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
    # A key kept past the window is forgotten: reusing it is a new request.
    IdempotentResponse.objects.filter(
        token=request.api_token, key=key, created_at__lt=idempotency_cutoff()
    ).delete()
    try:
        kept, created = IdempotentResponse.objects.get_or_create(
            token=request.api_token, key=key, defaults={"request_digest": digest}
        )
    except IntegrityError:  # the same key, sent twice at once: the other one won
        kept, created = IdempotentResponse.objects.get(token=request.api_token, key=key), False
    if not created:
        if kept.request_digest != digest:
            return problem(
                422,
                "This Idempotency-Key was used for a different request.",
                errors={"Idempotency-Key": ["Used before with a different request."]},
            )
        if kept.status == 0:
            return problem(409, "A request with this Idempotency-Key is still running.")
        return _replay(kept)
    try:
        response = view(request, *args, **kwargs)
    except BaseException:
        kept.delete()
        raise
    if response.status_code >= 500:
        kept.delete()  # not an answer: the retry may try again
        return response
    kept.status = response.status_code
    kept.content_type = response.get("Content-Type", "application/json")
    kept.body = response.content.decode()
    kept.save(update_fields=["status", "content_type", "body"])
    return response


def gate(view):
    """Wrap one ninja endpoint view: 401, 429, 403 (scope) and idempotency."""

    @wraps(view)
    def gated(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = api_token_authenticate(_bearer(request))
        if token is None:
            return problem(
                401,
                "Send a live API token: Authorization: Bearer <token> (Security page).",
                WWW_Authenticate='Bearer realm="cleared"',
            )
        request.user = token.user
        request.api_token = token
        if token.user.time_zone:
            timezone.activate(zoneinfo.ZoneInfo(token.user.time_zone))
        if retry_after := _over_limit(token.pk):
            return problem(
                429,
                f"More than {settings.CLEARED_API_RATE} requests a minute with this token.",
                Retry_After=str(retry_after),
            )
        if request.method not in SAFE_METHODS and not token.may_write:
            return problem(403, "This token may only read: create a read and write token.")
        # The change history says the person acted through this token (pipeline.history).
        with acting_via(f"API token {token.name}"):
            if request.method == "POST":
                return _idempotent(request, view, args, kwargs)
            return view(request, *args, **kwargs)

    gated.login_required = False  # the token is the credential (LoginRequiredMiddleware)
    gated.csrf_exempt = True
    return gated
