import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, beat_init, celeryd_init
from django.conf import settings

from pipeline.masking import mask_handlers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cleared")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **kwargs) -> None:
    # The filesystem transport needs its folders before the first message.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_card_numbers_in_logs(logger: logging.Logger, **kwargs) -> None:
    # The worker and beat set up their own handlers (hijacking the root
    # logger); wrap their formatters so task failures, tracebacks and
    # everything else they write is masked like the rest (pipeline/masking.py).
    mask_handlers(logger)


def without_pool(databases: dict) -> None:
    """Drop the connection pool from every database of ``databases`` (the setting)."""
    for database in databases.values():
        database.get("OPTIONS", {}).pop("pool", None)


@celeryd_init.connect
@beat_init.connect
def _no_connection_pool(**kwargs) -> None:
    """Workers and beat connect without the pool (DATABASE_POOL is for the web).

    Celery's Django fixup closes a prefork child's pool after every task, so a
    pool there would open its connections for one task and close them again;
    a plain connection per task is cheaper. Runs before any connection is made.
    """
    without_pool(settings.DATABASES)
