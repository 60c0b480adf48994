// The customer's card-on-file pages (templates/online/card_setup.html and
// authenticate.html). Putting a card on file: the processor's card field
// (Stripe Elements) and stripe.confirmCardSetup; the number never reaches
// Cleared. Authenticating a charge: stripe.confirmCardPayment plays the
// bank's check (3-D Secure) on the charge already made with the card on file.
(function () {
  "use strict";
  const form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") return;
  const stripe = Stripe(form.dataset.key);
  const setup = form.dataset.mode === "setup";
  let card = null;
  if (setup) {
    card = stripe.elements().create("card");
    card.mount("#card-element");
  }
  const button = document.getElementById("card-button");
  const error = document.getElementById("card-error");
  const label = button.textContent;

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    button.disabled = true;
    button.textContent = setup ? "Saving…" : "Confirming…";
    error.hidden = true;
    const result = setup
      ? await stripe.confirmCardSetup(form.dataset.secret, { payment_method: { card: card } })
      : await stripe.confirmCardPayment(form.dataset.secret);
    if (result.error) {
      error.textContent = (result.error.message || "The card was refused.") +
        " Nothing was charged; please try again.";
      error.hidden = false;
      button.disabled = false;
      button.textContent = label;
      return;
    }
    window.location.assign(form.dataset.done);
  });
})();
