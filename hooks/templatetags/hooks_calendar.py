from django import template

from hooks.models import CalendarFeed

register = template.Library()


@register.inclusion_tag("hooks/_calendar_section.html", takes_context=True)
def calendar_feed_section(context) -> dict:
    """The Security page's calendar section (the page is pipeline's: it includes this)."""
    user = context["request"].user
    feed = CalendarFeed.objects.filter(user=user).first()
    return {"feed": feed, "csrf_token": context.get("csrf_token")}
