// Drag a deal card to another column of the pipeline board. The server decides
// whether the move is legal (the transitions table) and answers with the whole
// board re-rendered, including the message that says what happened. Each card
// also has a plain form, so the board works from the keyboard and without this.
(function () {
  function boardOf(el) { return el.closest("#pipeline-board"); }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".deal-card[data-deal]");
    if (!card) return;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", JSON.stringify({
      deal: card.dataset.deal, version: card.dataset.version,
    }));
    card.classList.add("dragging");
  });

  document.addEventListener("dragend", function (event) {
    var card = event.target.closest && event.target.closest(".deal-card");
    if (card) card.classList.remove("dragging");
    document.querySelectorAll(".board-column.drop-target").forEach(function (col) {
      col.classList.remove("drop-target");
    });
  });

  document.addEventListener("dragover", function (event) {
    var column = event.target.closest && event.target.closest(".board-column[data-stage]");
    if (!column || !boardOf(column)) return;
    event.preventDefault();
    column.classList.add("drop-target");
  });

  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest(".board-column");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
  });

  document.addEventListener("drop", function (event) {
    var column = event.target.closest && event.target.closest(".board-column[data-stage]");
    var board = column && boardOf(column);
    if (!board) return;
    event.preventDefault();
    var data;
    try { data = JSON.parse(event.dataTransfer.getData("text/plain")); } catch (e) { return; }
    htmx.ajax("POST", board.dataset.moveUrl, {
      target: "#pipeline-board",
      swap: "outerHTML",
      values: { deal: data.deal, version: data.version, to_stage: column.dataset.stage,
                back: board.dataset.back },
    });
  });
})();
