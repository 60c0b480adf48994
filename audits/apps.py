from django.apps import AppConfig


class AuditsConfig(AppConfig):
    """Wrap-ups, the audit queue and verification calls; stands on the pipeline."""

    name = "audits"
    verbose_name = "Audits"
