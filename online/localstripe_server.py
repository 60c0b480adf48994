"""localstripe, the fake Stripe server, made faithful enough for Cleared's pay page.

Run: ``python -m online.localstripe_server --port 8420 --webhook-url
http://127.0.0.1:8000/online/stripe/webhook/``. ``make run`` and the tests
(tests/online/conftest.py) start it when no ``STRIPE_SECRET_KEY`` is set.

localstripe 1.15.10 differs from Stripe's documented behaviour in three ways
that matter here; this launcher patches exactly those, nothing else:

1. ``POST /v1/payment_intents/{id}/confirm`` with ``payment_method`` or
   ``payment_method_data`` answers "Not implemented". Stripe lets the browser
   confirm a PaymentIntent with its ``client_secret`` and the publishable key,
   creating the card's PaymentMethod from ``payment_method_data``
   (``_confirm``). A retry after a decline confirms again with a new card.
2. Its Stripe.js ``confirmCardPayment(secret, {payment_method: {card: element}})``
   ignores the card and only plays 3-D Secure. Patched (``_JS_CONFIRM``) to do
   what Stripe.js does: confirm with the element's card, then play 3-D Secure
   when the intent ``requires_action`` (cards 4000 0025 0000 3155 and kin).
3. Card 4000 0000 0000 0002 is declined only when attached to a customer;
   Stripe declines it on charge too (``card_declined``, "Your card was declined.").

Also: PaymentIntents accept ``description`` and ``setup_future_usage`` (Stripe
does; localstripe refused them), the saved state goes to a file of this server's
own (``--state-file``; localstripe's default ``/tmp/localstripe.pickle`` is shared
by every process on the machine), and the webhook endpoint is registered at start
(``--webhook-url``, ``--webhook-secret``: the same as ``STRIPE_WEBHOOK_SECRET``).
localstripe sends no ``charge.refunded`` or ``charge.dispute.*`` events; the
tests post those signed themselves.
"""

import argparse
import logging
import pickle
import re
import socket

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.webhooks import register_webhook

# The same default as config/settings.py's STRIPE_WEBHOOK_SECRET in test mode.
DEV_WEBHOOK_SECRET = "whsec_cleared_dev_only"  # noqa: S105 - test mode only
# Every event Cleared handles (online/webhook.py), plus the card-on-file ones.
EVENTS = [
    "payment_intent.processing",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "setup_intent.succeeded",
    "setup_intent.setup_failed",
    "charge.refunded",
    "charge.dispute.created",
]

_PaymentIntent = resources.PaymentIntent
_PaymentMethod = resources.PaymentMethod
_original_pi_init = _PaymentIntent.__init__
_original_charging_declined = _PaymentMethod._charging_is_declined


# --- 1. confirming a PaymentIntent with the card the browser sends ----------------


def _pi_init(self, *args, description=None, setup_future_usage=None, **kwargs):
    _original_pi_init(self, *args, **kwargs)
    self.description = description
    self.setup_future_usage = setup_future_usage


def _card_error(intent, charge) -> UserError:
    """Stripe's answer to a declined confirm: a card_error carrying the intent."""
    error = UserError(
        402,
        charge.failure_message or "Your card was declined.",
        {"code": charge.failure_code or "card_declined", "charge": charge.id},
    )
    error.body["error"].update(
        type="card_error", decline_code="generic_decline", payment_intent=intent._export()
    )
    return error


@classmethod
def _confirm(
    cls,
    id,
    payment_method=None,
    payment_method_data=None,
    client_secret=None,
    use_stripe_sdk=None,
    return_url=None,
    off_session=None,
    **kwargs,
):
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
    if not (isinstance(id, str) and id.startswith("pi_")):
        raise UserError(400, "Bad request")
    obj = cls._api_retrieve(id)
    if client_secret is not None and client_secret != obj.client_secret:
        raise UserError(401, "Unauthorized")
    if payment_method_data is not None:
        if not isinstance(payment_method_data, dict):
            raise UserError(400, "Bad request")
        data = {k: v for k, v in payment_method_data.items() if k in ("type", "card")}
        data.setdefault("type", "card")
        payment_method = _PaymentMethod._api_create(**data).id
    if payment_method is not None:
        if obj.status not in ("requires_payment_method", "requires_confirmation"):
            raise UserError(400, "This PaymentIntent can no longer be confirmed.")
        _PaymentMethod._api_retrieve(payment_method)  # 404 if it does not exist
        obj.payment_method = payment_method
        obj.latest_charge = None  # a new try: the failed charge stays in the charges list
        obj._authentication_failed = False
        if obj.setup_future_usage and obj.customer:
            _PaymentMethod._api_retrieve(payment_method).customer = obj.customer
    if obj.status != "requires_confirmation":
        raise UserError(400, "Bad request")
    try:
        obj._confirm(on_failure_now=obj._report_failure)
    except UserError as exc:
        if exc.code == 402 and obj.latest_charge is not None:
            raise _card_error(obj, obj.latest_charge) from None
        raise
    return obj


# --- 3. the "declined" test cards are declined on charge too ----------------------


def _charging_is_declined(self):
    return _original_charging_declined(self) or self._attaching_is_declined()


# --- 2. Stripe.js: confirmCardPayment with a card element ---------------------------

_JS_CONFIRM = """
    confirmCardPayment: async function (clientSecret, data) {
      // Cleared's patch (online/localstripe_server.py): confirm with the card typed
      // into the element, as Stripe.js does; then 3-D Secure when it is asked for.
      const card = data && data.payment_method && data.payment_method.card;
      if (!(card instanceof Element)) {
        return this._localstripeAuthenticate(clientSecret, data);
      }
      const pi = clientSecret.match(/^(pi_\\w+)_secret_/)[1];
      try {
        const response = await fetch(
          `${LOCALSTRIPE_BASE_API}/v1/payment_intents/${pi}/confirm`, {
          method: 'POST',
          body: JSON.stringify({
            key: apiKey,
            client_secret: clientSecret,
            payment_method_data: {type: 'card', card: card.value.card},
          }),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status !== 200 || body.error) {
          return {error: body.error || {message: 'The card processor did not answer.'}};
        }
        if (body.status === 'requires_action') {
          return this._localstripeAuthenticate(clientSecret, data);
        }
        return {paymentIntent: body};
      } catch (err) {
        return {error: {message: String(err)}};
      }
    },
    _localstripeAuthenticate: async (clientSecret, data) => {"""
_JS_ORIGINAL = "    confirmCardPayment: async (clientSecret, data) => {"


def _patched_js() -> str:
    with open(server.os.path.dirname(server.__file__) + "/localstripe-v3.js") as f:
        js = f.read()
    if js.count(_JS_ORIGINAL) != 1:
        raise RuntimeError("localstripe's Stripe.js changed: review online/localstripe_server.py")
    return js.replace(_JS_ORIGINAL, _JS_CONFIRM)


def _js_view(text: str):
    async def view(request):
        return web.Response(text=text, content_type="application/javascript")

    return view


# The browser confirms with the publishable key and the client secret, as with Stripe.
_BROWSER_CONFIRM = re.compile(r"^/v1/payment_intents/\w+/confirm$")


@web.middleware
async def _auth(request, handler):
    if request.method == "POST" and _BROWSER_CONFIRM.match(request.path):
        data = await server.get_post_data(request, remove_auth=False) or {}
        key, secret = data.get("key"), data.get("client_secret")
        if isinstance(key, str) and key.startswith("pk_") and isinstance(secret, str):
            return await handler(request)
    return await server.auth_middleware(request, handler)


def patch(state_file: str | None) -> web.Application:
    """Apply the patches above to localstripe's app and return it (not yet serving)."""
    _PaymentIntent.__init__ = _pi_init
    _PaymentIntent._api_confirm = _confirm
    _PaymentMethod._charging_is_declined = _charging_is_declined
    app = server.app
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == "POST" and info.get("formatter") == "/v1/payment_intents/{id}/confirm":
            route._handler = server.api_extra(_PaymentIntent._api_confirm, "")
        if info.get("path") == "/js.stripe.com/v3/" and route.method in ("GET", "HEAD"):
            route._handler = _js_view(_patched_js())
    middlewares = app.middlewares
    middlewares[middlewares.index(server.auth_middleware)] = _auth

    store = resources.store

    def dump():
        if state_file:
            with open(state_file, "wb") as f:
                pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)

    store.dump_to_disk = dump
    if state_file:
        try:
            with open(state_file, "rb") as f:
                dict.update(store, pickle.load(f))  # noqa: S301 - our own state file
        except (FileNotFoundError, EOFError):
            pass
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--webhook-url", help="Cleared's /online/stripe/webhook/ URL")
    parser.add_argument("--webhook-secret", default=DEV_WEBHOOK_SECRET)
    parser.add_argument("--state-file", default="", help="keep objects across restarts here")
    args = parser.parse_args(argv)
    app = patch(args.state_file or None)
    if args.webhook_url:
        register_webhook("cleared", args.webhook_url, args.webhook_secret, EVENTS)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO)
    access.addHandler(logging.StreamHandler())
    print(f"localstripe (patched for Cleared) on http://{args.host}:{args.port}", flush=True)
    web.run_app(app, sock=sock, access_log=access, print=None)


if __name__ == "__main__":
    main()
