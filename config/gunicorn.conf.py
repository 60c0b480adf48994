"""Gunicorn's configuration in production (Dockerfile, docker-compose.yml).

    gunicorn -c config/gunicorn.conf.py config.wsgi:application --bind ... --workers ...

Gunicorn names itself in the ``Server`` header of every response and has no
setting to change that (up to 27.x); telling every visitor which server runs
the app only helps whoever looks for a known flaw in it. Gunicorn reads the
value from this module-level name for each response, so it is replaced here,
before any worker is forked. tests/test_server_header.py checks it against a
real gunicorn process, so an upgrade that moves the name fails the suite.
"""

import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "cleared"
