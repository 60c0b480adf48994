from django.conf import settings
from django.utils.functional import SimpleLazyObject

from reminders.selectors import reminder_panel, reminders_due_count


def reminders(request) -> dict:
    """The nav badge's count and the home panel, each read only if a page shows it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "reminders_due_count": SimpleLazyObject(lambda: reminders_due_count(user)),
        "reminders_panel": SimpleLazyObject(lambda: reminder_panel(user)),
        "reminders_poll_seconds": settings.REMINDERS_POLL_SECONDS,
    }
