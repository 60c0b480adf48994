"""The shared cache on Redis, where Redis being down is a miss, not an error.

Cleared's cache only ever holds what it can lose (the API's rate counters;
README, "Fast and never stale"), so losing it costs little, never correctness. Django's
own ``RedisCache`` raises when Redis does not answer, which would turn a Redis
outage into a 500 on every page that reads the cache; this
subclass answers a miss instead (``get`` returns the default, ``set`` and
``delete`` do nothing), logs one warning when Redis goes away and one line when
it is back, and, after a failure, does not try Redis again for
``RETRY_SECONDS``, so an unreachable host costs one connect timeout per
process every few seconds, not one per request.

Built on Django's backend rather than django-redis's ``IGNORE_EXCEPTIONS``: it
keeps the client Django ships and tests, and django-redis logs every ignored
error, a line per cache call during an outage.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Redis down or not answering in time; any other error (a bug, a bad command)
# still raises.
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError)


class _Outage:
    """One Redis server's state, shared by every thread's backend in a process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0


_outages: dict[str, _Outage] = {}


class ForgivingRedisCache(RedisCache):
    """``RedisCache`` whose every call falls back to "no cache" while Redis is down."""

    # After a failure, calls skip Redis (answer a miss at once) for this long.
    RETRY_SECONDS = 2.0

    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self._outage = _outages.setdefault(str(server), _Outage())

    def _forgiving(self, fallback: Any, method: Callable[..., Any], *args: Any) -> Any:
        outage = self._outage
        if outage.down_since is not None and time.monotonic() < outage.retry_at:
            return fallback
        try:
            result = method(*args)
        except OUTAGE_ERRORS as exc:
            self._went_down(exc)
            return fallback
        if outage.down_since is not None:
            self._came_back()
        return result

    def _went_down(self, exc: Exception) -> None:
        outage = self._outage
        with outage.lock:
            now = time.monotonic()
            outage.retry_at = now + self.RETRY_SECONDS
            if outage.down_since is None:
                outage.down_since = now
                logger.warning("Cache unavailable, serving without it: %s", exc)

    def _came_back(self) -> None:
        outage = self._outage
        with outage.lock:
            if outage.down_since is not None:
                logger.info("Cache is back after %.0f s.", time.monotonic() - outage.down_since)
                outage.down_since = None

    def ping(self) -> None:
        """Raise if Redis does not answer (for /healthz); never skipped, never forgiven."""
        self._cache.get_client(write=True).ping()

    # --- the cache API, each call forgiven -------------------------------------------------

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._forgiving(False, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._forgiving(default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._forgiving(None, super().set, key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        # A counter (the customer link's rate limit): 0 while Redis is down, no
        # count at all. A missing key still raises ValueError, as Django's does.
        return self._forgiving(0, super().incr, key, delta, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._forgiving(False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._forgiving(False, super().delete, key, version)

    def get_many(self, keys, version=None):
        return self._forgiving({}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._forgiving(False, super().has_key, key, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        # Django's contract: set_many returns the keys it could not store.
        return self._forgiving(list(data), super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None):
        self._forgiving(None, super().delete_many, keys, version)

    def clear(self):
        return self._forgiving(False, super().clear)
