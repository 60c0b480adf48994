"""Errors as ``application/problem+json`` (RFC 9457): type, title, status, detail,
and ``errors: {field: [messages]}`` with the messages the pages' forms give."""

import json

from django.http import HttpResponse

PROBLEM_TYPE = "/api/v1/problems/"
TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Invalid input",
    429: "Too many requests",
    503: "Unavailable",
}
SLUGS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "not-allowed",
    404: "not-found",
    409: "conflict",
    422: "invalid-input",
    429: "too-many-requests",
    503: "unavailable",
}


def problem(
    status: int, detail: str = "", *, errors: dict[str, list[str]] | None = None, **headers: str
) -> HttpResponse:
    body = {
        "type": PROBLEM_TYPE + SLUGS.get(status, str(status)),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or TITLES.get(status, "Error"),
    }
    if errors:
        body["errors"] = errors
    response = HttpResponse(
        json.dumps(body), status=status, content_type="application/problem+json"
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class Problem(Exception):
    """Raised by an endpoint: answered as a problem document."""

    def __init__(self, status: int, detail: str = "", errors: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


class FormInvalid(Problem):
    """A Django form refused the input: its messages, field by field."""

    def __init__(self, form, detail: str = "Check the fields named in errors."):
        errors = {
            ("non_field_errors" if name == "__all__" else name): [e["message"] for e in messages]
            for name, messages in form.errors.get_json_data().items()
        }
        super().__init__(422, detail, errors)


def field_problem(field: str | None, message: str, status: int = 422) -> Problem:
    return Problem(status, message, {field or "non_field_errors": [message]})
