from django import template

from api.forms import ApiTokenForm

register = template.Library()


@register.simple_tag
def api_tokens(user) -> dict:
    """The Security page's API section: the person's tokens, newest first, and the form."""
    return {"tokens": list(user.api_tokens.all()), "form": ApiTokenForm()}
