"""gunicorn's logger for Cleared: every line it writes is masked.

The access log's request line, query string, referrer and headers can carry
what a user typed (``GET /deals/?q=4111111111111111``); gunicorn's error log
can carry a traceback quoting it. Both go through the masker of
``pipeline/masking.py``. Used by ``config/gunicorn.conf.py``.
"""

from gunicorn import glogging

from pipeline.masking import mask_handlers


class MaskingLogger(glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            mask_handlers(log)
