"""Where a webhook may be sent: http(s) only, and in production never to this
network's own machines (server-side request forgery), unless
HOOKS_ALLOW_PRIVATE_TARGETS says so (on with DEBUG and in the tests, whose
receiver listens on 127.0.0.1). Checked when a subscription is saved and again
before every send: a name can come to point somewhere else."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class TargetRefused(Exception):
    pass


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_target(url: str) -> None:
    """Raise TargetRefused, with a message for the form, for a URL Cleared will not call."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("Give an http:// or https:// address.")
    if settings.HOOKS_ALLOW_PRIVATE_TARGETS:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise TargetRefused(f"{parts.hostname} does not resolve.") from exc
    if any(_is_private(info[4][0]) for info in infos):
        raise TargetRefused(
            f"{parts.hostname} is on a private or local network: Cleared does not send there."
        )
