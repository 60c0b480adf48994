"""What a delivery's body says: Standard Webhooks JSON, or a chat tool's message.

The body is built from the stored event alone, so every attempt (and a
Resend) sends the same bytes under the same ``webhook-id``.
"""

import json

from django.conf import settings

from hooks.models import Event, Format


def standard_body(event: Event) -> dict:
    """The Standard Webhooks payload: ``type``, ``timestamp`` and ``data``."""
    return {
        "type": event.type,
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn: these three are control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_line(event: Event, bold: str = "*") -> str:
    """ "Riley's deal *Website redesign* payment cleared: $9,600"."""
    parts = event.chat or {}
    if not parts.get("title"):
        return parts.get("what") or event.type
    return f"{parts.get('who', 'Cleared')}'s deal {bold}{parts['title']}{bold} {parts['what']}"


def _link(event: Event) -> str:
    return (event.data.get("deal") or {}).get("web_url") or settings.CLEARED_SITE_URL


def slack_body(event: Event) -> dict:
    line = _slack_escape(chat_line(event))
    return {"text": f"{line} <{_link(event)}|Open in Cleared>"}


def teams_body(event: Event) -> dict:
    """A legacy MessageCard, which Teams' incoming webhooks and Workflows accept."""
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": chat_line(event, bold=""),
        "themeColor": "0B7285",
        "text": chat_line(event, bold="**"),
        "potentialAction": [
            {
                "@type": "OpenUri",
                "name": "Open in Cleared",
                "targets": [{"os": "default", "uri": _link(event)}],
            }
        ],
    }


BUILDERS = {Format.JSON: standard_body, Format.SLACK: slack_body, Format.TEAMS: teams_body}


def body_for(event: Event, fmt: str) -> str:
    """The exact text sent (and signed) for this event in this format."""
    return json.dumps(BUILDERS[fmt](event), separators=(",", ":"), ensure_ascii=False)
