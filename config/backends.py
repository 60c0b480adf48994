"""How Cleared talks to Redis, as the cache (the board's totals) and as Celery's broker.

Both are optional to serving a page: short timeouts make a Redis outage fail
fast (a cache miss, a publish given up and logged) instead of holding each
request for seconds. Settings and the outage test build their configuration
here, so the test exercises exactly what production runs.
"""


def redis_cache(url: str) -> dict:
    """The ``CACHES["default"]`` entry for a Redis cache at ``url``."""
    return {
        # A Redis outage is a cache miss, not an error (config/cache.py).
        "BACKEND": "config.cache.ForgivingRedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "cleared",
        "OPTIONS": {
            # Redis is on the same network: a connect or a reply slower than
            # this means it is down, and the page is served without it.
            "socket_connect_timeout": 0.25,
            "socket_timeout": 0.5,
        },
    }


def redis_broker_transport_options() -> dict:
    """Celery's ``broker_transport_options`` for a Redis broker."""
    return {
        "visibility_timeout": 3600,
        # A write enqueues its follow-up work after it commits; with the broker
        # down, that publish gives up at once instead of retrying the connection
        # for seconds (kombu's default) while the user waits: the periodic scan
        # catches up. The worker's own reconnects are unaffected: they retry
        # CELERY_BROKER_CONNECTION_MAX_RETRIES times.
        "max_retries": 0,
        "socket_connect_timeout": 0.5,
        "socket_timeout": 1.0,
    }


# Seconds kombu may spend establishing a broker connection before giving up.
BROKER_CONNECTION_TIMEOUT = 0.5
