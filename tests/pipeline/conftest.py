import pytest

from pipeline.models import Role
from tests.factories import UserFactory


@pytest.fixture
def other_manager(other_rep):
    return other_rep.manager


@pytest.fixture
def leaver(manager):
    return UserFactory(username="leaver", first_name="Lee", role=Role.REP, manager=manager)
