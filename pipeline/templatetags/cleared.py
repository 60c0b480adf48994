from django import template

from pipeline.services import role_for_moves
from pipeline.stages import Stage, next_moves
from pipeline.terms import money_text

register = template.Library()


@register.filter
def money(value) -> str:
    """``{{ amount|money }}``: ``pipeline.terms.money_text`` ($1,250.00)."""
    return money_text(value)


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (filters, pages)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag
def card_moves(deal, user) -> list:
    """The stages ``user`` may move ``deal`` to from a card: legal moves only
    (the transitions table), never Lost or Written off (they need a reason)."""
    return [
        move.target
        for move in next_moves(deal, role_for_moves(user))
        if move.target not in (Stage.LOST, Stage.WRITTEN_OFF)
    ]
