"""gunicorn's settings for Cleared: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

The Dockerfile and docker-compose.yml start the web server with this file so
that its access and error logs mask card numbers (config/gunicorn_logger.py).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")  # noqa: S104 (inside a container)
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
accesslog = "-"
errorlog = "-"
# The default access line ("%(r)s" is the request line with its query
# string); card numbers in it are masked by the logger class.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
logger_class = "config.gunicorn_logger.MaskingLogger"
