"""API tokens on each person's Security page: create (shown once), revoke.

The Security page (pipeline.account_views) includes ``api/_security_tokens.html``;
its list comes from the ``api_tokens`` tag, so pipeline never imports this app.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from api import services
from api.forms import ApiTokenForm

NEW_TOKEN_SESSION_KEY = "api_new_token"  # noqa: S105 - a session key name


def _security() -> str:
    return reverse("account_security") + "#api-tokens"


@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return render(request, "api/token_form.html", {"form": form}, status=422)
    try:
        new = services.api_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            verified=request.user.is_verified(),
        )
    except PermissionDenied as refused:
        form.add_error(None, str(refused))
        return render(request, "api/token_form.html", {"form": form}, status=403)
    # Shown once, on the next page: kept in the session until then, never in the database.
    request.session[NEW_TOKEN_SESSION_KEY] = {"id": new.token.pk, "secret": new.secret}
    return redirect("api_token_created")


@never_cache
def token_created(request: HttpRequest) -> HttpResponse:
    """The new token, once: a reload (or another visit) finds it gone."""
    shown = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    token = None
    if shown:
        token = request.user.api_tokens.filter(pk=shown["id"]).first()
    context = {"token": token, "secret": shown["secret"] if token else None}
    return render(request, "api/token_created.html", context)


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    if services.api_token_revoke(user=request.user, token_id=pk):
        messages.success(request, "Token revoked: it no longer works.")
    else:
        messages.info(request, "That token was already revoked.")
    return redirect(_security())
