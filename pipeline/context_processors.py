from django.conf import settings


def cleared(request) -> dict:
    return {"CURRENCY": settings.CURRENCY, "CURRENCY_SYMBOL": settings.CURRENCY_SYMBOL}
