"""How long a processor event takes to reach the rep's dashboard (issue 21).

    python bench/processor_bench.py --url http://127.0.0.1:8000 --stripe http://127.0.0.1:8420 [-n 20]

Against a running `make run` started with ``CLEARED_LINK_RATE_LIMIT=1000`` (every
"customer" here comes from one address; the link pages allow 20 per 10 minutes) (web, workers, beat and the patched localstripe,
whose webhooks go to the app) and its database (the same DATABASE_URL): makes N
delivered deals of the demo rep with an invoice and a customer link each; then,
for each, does what the customer's browser does (opens the pay page, presses Pay,
Stripe.js confirms the test card 4242 at localstripe) and, from the moment
localstripe answers, polls the deal's page as the rep until the payment shows
Cleared. Prints the median and p95 seconds. localstripe itself waits 1 s before
sending a webhook (its webhooks.py), so that second is in the figure.
"""

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from first_minute import Browser  # noqa: E402

from online.models import Intent  # noqa: E402
from pipeline.models import User  # noqa: E402
from pipeline.stages import Stage  # noqa: E402
from receivables import links  # noqa: E402
from tests.factories import CustomerFactory, DealFactory, InvoiceFactory  # noqa: E402


def _deals(n: int, rep: User):
    made = []
    for _ in range(n):
        customer = CustomerFactory(owner=rep)
        deal = DealFactory(
            rep=rep, customer=customer, deposit_required=False, stage=Stage.DELIVERED
        )
        invoice = InvoiceFactory(deal=deal)
        link = links.customer_link_create(customer=customer, invoice=invoice, created_by=rep)
        made.append((deal, invoice, links.pay_now_path(link, invoice)))
    return made


def _confirm(stripe: str, intent_id: str, secret: str) -> dict:
    body = json.dumps(
        {
            "key": "pk_test_bench",
            "client_secret": secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031,
                         "cvc": "123"},
            },
        }
    ).encode()  # fmt: skip
    request = urllib.request.Request(
        f"{stripe}/v1/payment_intents/{intent_id}/confirm", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--stripe", default="http://127.0.0.1:8420")
    parser.add_argument("-n", type=int, default=20, help="payments to time")
    parser.add_argument("--user", default="rep")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds to wait for one")
    args = parser.parse_args()

    rep = User.objects.get(username=args.user)
    rep_web = Browser(args.url)
    landed, _ = rep_web.post("/accounts/login/", {"username": args.user, "password": args.password})
    if "/accounts/login/" in landed:
        print(f"Could not log in as {args.user}.")
        return 1
    seconds = []
    for deal, invoice, pay_path in _deals(args.n, rep):
        customer = Browser(args.url)
        _, _, page = customer.get(pay_path)
        secret = page.split('data-secret="', 1)[1].split('"', 1)[0]
        intent = Intent.objects.get(invoice=invoice)
        pay = urllib.request.Request(f"{args.url}{pay_path}start/", data=b"", method="POST")
        with customer.opener.open(pay, timeout=30):  # the customer pressed Pay
            pass
        answer = _confirm(args.stripe, intent.processor_id, secret)
        start = time.monotonic()
        if answer.get("status") != "succeeded":
            print("localstripe refused the test card:", answer)
            return 1
        while True:
            _, _, deal_page = rep_web.get(deal.get_absolute_url())
            if 'class="badge pay-cleared"' in deal_page:
                break
            if time.monotonic() - start > args.limit:
                print(f"Deal {deal.pk}: the payment did not show Cleared within {args.limit} s.")
                return 1
            time.sleep(0.05)
        seconds.append(time.monotonic() - start)
    seconds.sort()
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    print(
        f"processor event → rep's deal page: median {statistics.median(seconds):.2f} s, "
        f"p95 {p95:.2f} s over {len(seconds)} card payments "
        "(localstripe waits 1 s before each webhook)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
