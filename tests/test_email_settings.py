"""Email and link settings come from the environment (issue 12, item 5)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _settings_value(expression: str, **env: str) -> str:
    """Evaluate ``expression`` on freshly loaded settings under ``env``."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; "
        f"django.setup(); from django.conf import settings; print({expression})"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "CLEARED_SITE"))}
    clean.pop("REMINDERS_SITE_URL", None)
    clean.pop("PORT", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_file_backend_is_configured_from_the_environment(tmp_path):
    """It used to fail at start-up: "OPTIONS must define 'file_path'"."""
    mailers = _settings_value(
        "settings.MAILERS['default']",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(tmp_path),
    )
    assert "filebased.EmailBackend" in mailers
    assert f"'file_path': '{tmp_path}'" in mailers


def test_smtp_options_come_from_the_environment():
    mailers = _settings_value(
        "settings.MAILERS['default']",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="mail.example.com",
        EMAIL_PORT="2525",
        EMAIL_USE_TLS="true",
    )
    assert "'host': 'mail.example.com'" in mailers
    assert "'port': 2525" in mailers
    assert "'use_tls': True" in mailers


def test_links_in_emails_follow_the_port_the_site_is_served_on():
    assert _settings_value("settings.CLEARED_SITE_URL", PORT="8765") == "http://127.0.0.1:8765"
    assert _settings_value("settings.CLEARED_SITE_URL") == "http://127.0.0.1:8000"


def test_a_public_address_wins_over_the_port():
    url = _settings_value(
        "settings.CLEARED_SITE_URL", PORT="8765", CLEARED_SITE_URL="https://cleared.example.com/"
    )
    assert url == "https://cleared.example.com"
