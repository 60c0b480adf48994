"""The API object: django-ninja, its token auth, and every error as problem+json."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from api.endpoints import audits, board, customers, deals, money, reminders
from api.problems import Problem, problem


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``. The gate (api/gate.py) has checked the
    token before the endpoint runs; this names the scheme in the OpenAPI schema."""

    def authenticate(self, request, token):
        return getattr(request, "api_token", None)


class ClearedAPI(NinjaAPI):
    """The schema says what is sent: errors as ``application/problem+json``, and
    ``Idempotency-Key`` on every POST."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for methods in schema["paths"].values():
            for method, operation in methods.items():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        response["content"] = {
                            "application/problem+json": content["application/json"]
                        }
                if method == "post":
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
        return schema


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "A retry with the same key (and body) gets the first answer and "
    "changes nothing; the same key with another body is a 422.",
}

api = ClearedAPI(
    title="Cleared API",
    version="1",
    description=(
        "What a person does in Cleared's pages, a program can: with an API token "
        "from your Security page, which acts as you and sees what you see. "
        "Errors are application/problem+json; every POST takes an Idempotency-Key."
    ),
    auth=TokenAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
)
for module in (deals, customers, money, audits, reminders, board):
    api.add_router("/", module.router)


def _field(loc) -> str:
    """A pydantic error's location as the field it names: ("body", "payload", "amount")."""
    parts = [
        str(part) for part in loc if part not in ("body", "payload", "query", "path", "filters")
    ]
    return ".".join(parts) or "non_field_errors"


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        errors.setdefault(_field(error.get("loc", ())), []).append(error.get("msg", "Invalid."))
    return problem(422, "Check the fields named in errors.", errors=errors)


@api.exception_handler(Problem)
def _problem(request, exc: Problem):
    return problem(exc.status, exc.detail, errors=exc.errors)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem(404, "Nothing here, or nothing you may see.")


@api.exception_handler(PermissionDenied)
def _denied(request, exc):
    return problem(403, str(exc) or "Not allowed.")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem(401, "Send a live API token: Authorization: Bearer <token>.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem(exc.status_code, str(exc))
