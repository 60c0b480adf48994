// The navigation folds behind a "Menu" button on a phone (the CSS decides
// when: .topbar.js-nav). Loaded right after the header, not deferred, so the
// menu is folded before the page is first painted; without JavaScript the
// links simply stay open. A disclosure: aria-expanded says whether the list
// is shown, Escape closes it and gives the focus back to the button.
(function () {
  "use strict";
  var topbar = document.querySelector(".topbar");
  var button = topbar && topbar.querySelector(".menu-toggle");
  if (!button) return;
  var links = document.getElementById(button.getAttribute("aria-controls"));
  topbar.classList.add("js-nav");

  function isOpen() { return button.getAttribute("aria-expanded") === "true"; }
  function setOpen(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    topbar.classList.toggle("nav-open", open);
  }

  button.addEventListener("click", function () { setOpen(!isOpen()); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isOpen()) {
      setOpen(false);
      button.focus();
    }
  });
  // A tap anywhere outside the open menu closes it.
  document.addEventListener("click", function (event) {
    if (isOpen() && !topbar.contains(event.target)) setOpen(false);
  });
  if (links) {
    links.addEventListener("focusout", function (event) {
      if (isOpen() && event.relatedTarget && !topbar.contains(event.relatedTarget)) setOpen(false);
    });
  }
})();

// The nav's menus (Reports, Manage, the account): <details> dropdowns that open
// without JavaScript; here one open menu closes the others, and a click
// outside or Escape closes it.
(function () {
  "use strict";
  var menus = document.querySelectorAll("details.nav-menu");
  if (!menus.length) return;
  function closeAll(except) {
    menus.forEach(function (menu) { if (menu !== except) menu.open = false; });
  }
  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () { if (menu.open) closeAll(menu); });
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("details.nav-menu")) closeAll(null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.nav-menu[open]");
    if (open) { open.open = false; open.querySelector("summary").focus(); }
  });
})();
