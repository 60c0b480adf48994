"""Keyset pages for the API's lists: ``WHERE (key, id) < (last key, last id)``,
never OFFSET, with the board's cursors (dashboards.board)."""

from django.db.models import Q, QuerySet

from dashboards.board import decode_cursor, encode_cursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def keyset_page(
    rows: QuerySet, column: str, cursor: str, limit: int, kind: type
) -> tuple[list, str | None]:
    """One page of ``rows`` ordered by ``column`` then id, both descending."""
    decoded = decode_cursor(cursor) if cursor else None
    if decoded is not None:
        value, pk = decoded
        if (kind is int and type(value) is int) or isinstance(value, kind):
            rows = rows.filter(
                Q(**{f"{column}__lte": value}) & (Q(**{f"{column}__lt": value}) | Q(pk__lt=pk))
            )
    rows = rows.order_by(f"-{column}", "-pk")
    found = list(rows[: limit + 1])
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    key = last
    for part in column.split("__"):
        key = getattr(key, part)
    return found[:limit], encode_cursor(key, last.pk)
