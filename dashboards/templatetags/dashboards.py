from django import template

from dashboards.board import bucket_for_age

register = template.Library()


@register.filter
def aging_bucket(days: int) -> str:
    return bucket_for_age(days).key
