import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

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
