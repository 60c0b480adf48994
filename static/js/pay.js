// The customer's pay page (templates/online/pay.html): the card field is the
// processor's (Stripe Elements); Cleared records the pending payment first
// (data-start), then Stripe.js confirms the card. The card number never
// reaches Cleared. A decline shows the processor's message and lets the
// customer try another card on the same PaymentIntent: nothing is charged twice.
(function () {
  "use strict";
  const form = document.getElementById("pay-form");
  if (!form || typeof Stripe === "undefined") return;
  const stripe = Stripe(form.dataset.key);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  const button = document.getElementById("pay-button");
  const error = document.getElementById("pay-error");
  const label = button.textContent;

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    button.disabled = false;
    button.textContent = label;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    button.disabled = true;
    button.textContent = "Paying…";
    error.hidden = true;
    let started;
    try {
      started = await fetch(form.dataset.start, { method: "POST", credentials: "omit" });
    } catch (err) {
      fail("We could not reach the server: check your connection and try again.");
      return;
    }
    if (!started.ok) {
      const body = await started.json().catch(function () { return {}; });
      fail(body.error || "The payment could not start. Please try again.");
      return;
    }
    const result = await stripe.confirmCardPayment(form.dataset.secret, {
      payment_method: { card: card },
    });
    if (result.error) {
      fail((result.error.message || "The card was declined.") +
        " Try another card — you have not been charged.");
      return;
    }
    window.location.assign(form.dataset.done);
  });
})();
