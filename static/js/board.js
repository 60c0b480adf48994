// Move a deal card to another column of the pipeline board by touch, pen or
// mouse, with Pointer Events (our own code: a drag library would bring
// HTML5 drag and drop, which phones do not fire, or far more than we need).
//
// Touch and pen drag the card by its "Move" control (touch-action: none, so
// the rest of the card still scrolls the page); a mouse may grab the card
// anywhere. Only the columns listed in the card's data-moves (the stages the
// transitions table allows, from the server) light up; the others are dimmed,
// or hidden on a phone. A drop on a column posts the move and the server,
// which checks the table again, answers with the whole board re-rendered and
// a message (a refusal says why). A tap on "Move" opens its form instead,
// which is also how the keyboard moves a card.
(function () {
  "use strict";
  var THRESHOLD = 6; // px before a press becomes a drag: a tap stays a tap
  var EDGE = 48; // px from the top or bottom of the screen that scroll it
  var drag = null;
  var swallowClick = false;

  function boardOf(el) { return el.closest("#pipeline-board"); }

  function columnAt(board, x, y) {
    var el = document.elementFromPoint(x, y);
    var column = el && el.closest(".board-column[data-stage]");
    return column && boardOf(column) === board ? column : null;
  }

  function start(event) {
    var card = drag.card;
    var box = card.getBoundingClientRect();
    drag.active = true;
    drag.offsetX = drag.x0 - box.left;
    drag.offsetY = drag.y0 - box.top;
    var legal = (card.dataset.moves || "").split(" ").filter(Boolean);
    var home = card.closest(".board-column");
    drag.board.querySelectorAll(".board-column[data-stage]").forEach(function (column) {
      if (column === home) return;
      column.classList.add(legal.indexOf(column.dataset.stage) >= 0 ? "drop-ok" : "drop-no");
    });
    var ghost = card.cloneNode(true);
    ghost.removeAttribute("id");
    ghost.querySelectorAll("[id]").forEach(function (el) { el.removeAttribute("id"); });
    ghost.classList.add("drag-ghost");
    ghost.setAttribute("aria-hidden", "true");
    ghost.style.width = box.width + "px";
    document.body.appendChild(ghost);
    drag.ghost = ghost;
    card.classList.add("dragging");
    move(event);
  }

  function move(event) {
    drag.x = event.clientX;
    drag.y = event.clientY;
    drag.ghost.style.left = drag.x - drag.offsetX + "px";
    drag.ghost.style.top = drag.y - drag.offsetY + "px";
    var over = columnAt(drag.board, drag.x, drag.y);
    drag.board.querySelectorAll(".drop-hover").forEach(function (column) {
      if (column !== over) column.classList.remove("drop-hover");
    });
    if (over && over.classList.contains("drop-ok")) over.classList.add("drop-hover");
  }

  function autoScroll() {
    if (!drag || !drag.active) return;
    var step = 0;
    if (drag.y < EDGE) step = -12;
    else if (drag.y > window.innerHeight - EDGE) step = 12;
    if (step) window.scrollBy(0, step);
    window.requestAnimationFrame(autoScroll);
  }

  function finish(drop) {
    var state = drag;
    drag = null;
    if (!state || !state.active) return;
    swallowClick = true;
    window.setTimeout(function () { swallowClick = false; }, 0);
    // Where it was dropped, before the hidden columns come back and move things.
    var column = drop && columnAt(state.board, state.x, state.y);
    if (state.ghost) state.ghost.remove();
    state.card.classList.remove("dragging");
    state.board.querySelectorAll(".drop-ok, .drop-no, .drop-hover").forEach(function (column) {
      column.classList.remove("drop-ok", "drop-no", "drop-hover");
    });
    if (!column || column === state.card.closest(".board-column")) return;
    htmx.ajax("POST", state.board.dataset.moveUrl, {
      target: "#pipeline-board",
      swap: "outerHTML",
      values: {
        deal: state.card.dataset.deal, version: state.card.dataset.version,
        to_stage: column.dataset.stage, back: state.board.dataset.back,
      },
    });
  }

  document.addEventListener("pointerdown", function (event) {
    if (drag || !event.isPrimary || event.button > 0) return;
    var card = event.target.closest && event.target.closest(".deal-card[data-deal]");
    if (!card || !boardOf(card)) return;
    var onHandle = event.target.closest(".card-move > summary");
    // Touch and pen: only the handle, so a finger on the card scrolls the page.
    if (event.pointerType !== "mouse" && !onHandle) return;
    // Inside the open form (select, button): not a drag.
    if (event.target.closest(".card-move form")) return;
    drag = { card: card, board: boardOf(card), x0: event.clientX, y0: event.clientY,
             x: event.clientX, y: event.clientY, active: false, pointer: event.pointerId };
  });

  document.addEventListener("pointermove", function (event) {
    if (!drag || event.pointerId !== drag.pointer) return;
    if (!drag.active) {
      if (Math.abs(event.clientX - drag.x0) + Math.abs(event.clientY - drag.y0) < THRESHOLD) return;
      start(event);
      window.requestAnimationFrame(autoScroll);
    } else {
      move(event);
    }
    event.preventDefault();
  });

  document.addEventListener("pointerup", function (event) {
    if (drag && event.pointerId === drag.pointer) {
      if (drag.active) move(event);
      finish(true);
    }
  });
  document.addEventListener("pointercancel", function () { finish(false); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && drag) finish(false);
  });

  // The click that ends a drag must not open the "Move" form or follow the link.
  document.addEventListener("click", function (event) {
    if (swallowClick) {
      event.preventDefault();
      event.stopPropagation();
      swallowClick = false;
    }
  }, true);
})();
