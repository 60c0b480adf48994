import pytest
from django.urls import reverse

from audits.models import Outcome
from tests.audits.conftest import record
from tests.conftest import _client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(db):
    return _client_for(UserFactory(username="root", is_staff=True, is_superuser=True))


def test_staff_read_verification_records_but_cannot_change_or_delete_them(
    admin_client_, audit, auditor
):
    attempt = record(audit, auditor, Outcome.NO_ANSWER, notes="Voicemail")
    for name, pk in (
        ("audit", audit.pk),
        ("callattempt", attempt.pk),
        ("wrapupchecklist", audit.wrap_up.pk),
    ):
        assert admin_client_.get(reverse(f"admin:audits_{name}_changelist")).status_code == 200
        page = admin_client_.get(reverse(f"admin:audits_{name}_change", args=[pk]))
        assert page.status_code == 200
        assert b'name="_save"' not in page.content
        assert admin_client_.get(reverse(f"admin:audits_{name}_delete", args=[pk])).status_code in (
            302,
            403,
        )
        assert admin_client_.get(reverse(f"admin:audits_{name}_add")).status_code == 403


def test_a_new_call_script_is_added_as_a_version_never_edited(admin_client_, script):
    page = admin_client_.get(reverse("admin:audits_callscript_change", args=[script.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client_.get(reverse("admin:audits_callscript_add")).status_code == 200
