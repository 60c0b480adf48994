// Behaviour that would otherwise sit in inline attributes, which the
// Content-Security-Policy forbids (no inline scripts, no eval).
(function () {
  "use strict";

  // Polls (hx-trigger="every Ns") run only while the tab is visible
  // (data-poll-visible) and not while something the user is working in is
  // open (data-poll-paused-by: a CSS selector). A cancelled poll is simply
  // tried again at the next interval.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.hasAttribute) return;
    if (elt.hasAttribute("data-poll-visible") && document.visibilityState !== "visible") {
      event.preventDefault();
      return;
    }
    var pausedBy = elt.getAttribute("data-poll-paused-by");
    if (pausedBy && document.querySelector(pausedBy)) {
      event.preventDefault();
    }
  });

  // <button data-print>: the browser's print dialog (invoices).
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) {
      window.print();
    }
  });
})();

// <input data-select-all>: a click selects the whole value (a link to copy).
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("input[data-select-all]")) {
    event.target.select();
  }
});
