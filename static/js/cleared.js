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

  // A poll or form whose session has ended is redirected to the login page:
  // the whole page goes there, instead of htmx swapping the login page into
  // the panel it was refreshing (which also removed the panel: every later
  // poll and script looking for it found nothing).
  var LOGIN_PATH = "/accounts/login/";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || !xhr.responseURL) return;
    var landed = new URL(xhr.responseURL, window.location.href);
    if (landed.pathname === LOGIN_PATH && window.location.pathname !== LOGIN_PATH) {
      event.detail.shouldSwap = false;
      landed.searchParams.set("next", window.location.pathname + window.location.search);
      window.location.assign(landed.href);
    }
  });

  // <button data-print>: the browser's print dialog (invoices).
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) {
      window.print();
    }
  });

  // A table wider than the screen scrolls inside its .table-wrap; a keyboard
  // user must be able to scroll it too, so a wrap that overflows takes the
  // focus (tabindex) and is named after the table's heading.
  function focusableScrollers(root) {
    (root || document).querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        if (!wrap.hasAttribute("tabindex")) {
          wrap.setAttribute("tabindex", "0");
          wrap.setAttribute("role", "region");
          var box = wrap.closest("article, section");
          var heading = box && box.querySelector("h1, h2, h3");
          wrap.setAttribute("aria-label", (heading ? heading.textContent.trim() : "Table") + " (scrolls sideways)");
        }
      } else if (wrap.getAttribute("tabindex") === "0" && wrap.getAttribute("role") === "region") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { focusableScrollers(); });
  document.addEventListener("htmx:afterSettle", function () { focusableScrollers(); });
  window.addEventListener("resize", function () { focusableScrollers(); });
})();

// <input data-select-all>: a click selects the whole value (a link to copy).
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("input[data-select-all]")) {
    event.target.select();
  }
});
