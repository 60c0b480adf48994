"""gunicorn's settings for Cleared: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

The Dockerfile and docker-compose.yml start the web server with this file:

- its access and error logs mask card numbers (config/gunicorn_logger.py);
- the ``Server`` header does not name the software. Gunicorn names itself in
  every response and has no setting to change that (up to 27.x); telling every
  visitor which server runs the app only helps whoever looks for a known flaw
  in it. Gunicorn reads the value from a module-level name for each response,
  so it is replaced here, before any worker is forked.
  tests/test_server_header.py checks it against a real gunicorn process, so an
  upgrade that moves the name fails the suite.

Command-line options (``--bind``, ``--workers``) override what is set here.
"""

import os

import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "cleared"

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")  # noqa: S104 (inside a container)
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# A few threads a worker: while one request waits on PostgreSQL another runs
# its Python (the GIL is released on I/O), so a slow page does not hold up the
# polls queued behind it.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = "-"
errorlog = "-"
# The default access line ("%(r)s" is the request line with its query
# string); card numbers in it are masked by the logger class.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
logger_class = "config.gunicorn_logger.MaskingLogger"
