"""PDFs of billing pages (invoices, statements), rendered from the page's own template.

WeasyPrint lays out the same HTML and print CSS the browser prints, so the
PDF and the page never drift apart. It needs Pango (system libraries): on a
machine without them ``pdf_unavailable()`` says so in words and the pages
offer the browser's "Save as PDF" instead of crashing. The Dockerfile and CI
install them (``libpango-1.0-0 libpangoft2-1.0-0``).

Every rendered page goes through ``mask_card_numbers`` before layout: a full
card or account number never reaches a PDF, even one that slipped past the
masked fields (DOMAIN.md: never store or show a full number).
"""

import logging
import mimetypes
from urllib.parse import unquote, urlsplit

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from pipeline.context_processors import cleared
from pipeline.masking import mask_card_numbers

logger = logging.getLogger(__name__)

try:  # Pango missing: WeasyPrint's import fails with OSError ("cannot load library").
    import weasyprint
except (ImportError, OSError) as exc:  # pragma: no cover - depends on the machine
    weasyprint = None
    _UNAVAILABLE = f"PDF is not available on this machine (its Pango libraries are missing: {exc})."
else:
    _UNAVAILABLE = ""

# The origin pages are laid out against: only our own static files resolve.
BASE_URL = "https://cleared.invalid/"
STATIC_PREFIX = "/static/"


class PdfUnavailable(Exception):
    """WeasyPrint or its system libraries are missing on this machine."""


def pdf_unavailable() -> str:
    """Why PDFs cannot be made here, in words; "" when they can."""
    return _UNAVAILABLE


def _static_fetcher():
    """A fetcher that resolves ``/static/…`` from the static files finders and nothing else.

    Rendering a page never makes the server fetch a URL (no SSRF through a PDF).
    """

    class StaticOnly(weasyprint.URLFetcher):
        def fetch(self, url, headers=None):
            path = unquote(urlsplit(url).path)
            if path.startswith(STATIC_PREFIX):
                found = finders.find(path.removeprefix(STATIC_PREFIX))
                if found:
                    with open(found, "rb") as handle:
                        body = handle.read()
                    kind = mimetypes.guess_type(found)[0] or "application/octet-stream"
                    return weasyprint.urls.URLFetcherResponse(url, body, {"Content-Type": kind})
            raise ValueError(f"Not fetched while rendering a PDF: {url}")

    return StaticOnly()


def render_pdf(template: str, context: dict) -> bytes:
    """The PDF of ``template`` rendered with ``context`` (print media, masked).

    Raises ``PdfUnavailable`` when this machine cannot make PDFs.
    """
    if weasyprint is None:
        raise PdfUnavailable(_UNAVAILABLE)
    # No request here, so no context processors: what they give the page is given here
    # (the statement's "Total due (USD)" read "Total due ()" without it).
    context = {**cleared(None), **context, "as_pdf": True}
    html = mask_card_numbers(render_to_string(template, context))
    document = weasyprint.HTML(string=html, base_url=BASE_URL, url_fetcher=_static_fetcher())
    return document.write_pdf()
