"""Personas with API tokens: each person's client speaks JSON with their own token."""

import json

import pytest
from django.test import Client

from api.models import Scope
from api.services import api_token_create
from pipeline.models import Role
from tests.factories import UserFactory


class ApiClient:
    """A test client that sends ``Authorization: Bearer`` and JSON bodies."""

    def __init__(self, secret: str):
        self.secret = secret
        self.client = Client()

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.secret}", **(headers or {})}

    def get(self, path, params=None, headers=None):
        return self.client.get(f"/api/v1{path}", params or {}, headers=self._headers(headers))

    def post(self, path, data=None, headers=None):
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(data or {}),
            content_type="application/json",
            headers=self._headers(headers),
        )

    def patch(self, path, data=None, headers=None):
        return self.client.patch(
            f"/api/v1{path}",
            json.dumps(data or {}),
            content_type="application/json",
            headers=self._headers(headers),
        )


def api_for(user, scope: str = Scope.WRITE) -> ApiClient:
    return ApiClient(api_token_create(user=user, name="test", scope=scope, verified=True).secret)


@pytest.fixture
def other_manager(other_rep):
    return other_rep.manager


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def rep_api(rep):
    return api_for(rep)


@pytest.fixture
def other_rep_api(other_rep):
    return api_for(other_rep)


@pytest.fixture
def manager_api(manager):
    return api_for(manager)


@pytest.fixture
def other_manager_api(other_manager):
    return api_for(other_manager)


@pytest.fixture
def auditor_api(auditor):
    return api_for(auditor)


__all__ = ["ApiClient", "api_for", "Role"]
