// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // Ages ("12 s ago") stay current while the page is open.
  function ageText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 172800) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min ago";
    return Math.floor(seconds / 86400) + " days ago";
  }
  function tickAges() {
    if (document.hidden) return;
    var now = Date.now();
    document.querySelectorAll("time.age[datetime]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(t)) el.textContent = ageText((now - t) / 1000);
    });
  }
  setInterval(tickAges, 5000);

  // Polling, instead of htmx's "every 10s [!document.hidden]" (a trigger filter needs eval,
  // which the Content-Security-Policy forbids): each [data-poll] element gets a "poll" event
  // every data-poll seconds while the tab is visible, and one as soon as it becomes
  // visible again. An element swapped in anew waits its whole interval first. One with
  // data-poll-unless="<selector>" skips its polls while something inside matches it (the
  // near-limit table while rows are ticked for a bulk grant: a new page would untick them).
  var lastPoll = new WeakMap();
  function poll(immediately) {
    if (document.hidden || !window.htmx) return;
    var now = Date.now();
    document.querySelectorAll("[data-poll]").forEach(function (el) {
      var unless = el.getAttribute("data-poll-unless");
      if (unless && el.querySelector(unless)) return;
      var every = 1000 * (parseFloat(el.getAttribute("data-poll")) || 10);
      var last = lastPoll.get(el);
      if (last === undefined && !immediately) { lastPoll.set(el, now); return; }
      if (immediately || now - last >= every) {
        lastPoll.set(el, now);
        window.htmx.trigger(el, "poll");
      }
    });
  }
  setInterval(function () { poll(false); }, 1000);
  document.addEventListener("visibilitychange", function () { poll(true); });

  // Charts: each [data-plotly] element names the <script type="application/json"> holding
  // its figure. Drawn on load and whenever htmx swaps new content in.
  function drawCharts(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-plotly"));
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.react(el, figure.data, figure.layout, {displayModeBar: false, responsive: true});
      // A chart whose points carry links (customdata) opens them on click: the sunburst's
      // segments go to their entity in the tree.
      if (el.hasAttribute("data-plotly-links") && el.on && !el.dataset.linked) {
        el.dataset.linked = "1";
        el.on("plotly_sunburstclick", function (event) {
          var point = event.points && event.points[0];
          if (point && point.customdata) window.location.assign(point.customdata);
          return false;
        });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });

  // The governance filters, and the tree's own polling, keep the tree as it is open on
  // screen: the nodes opened since the page loaded (by htmx) travel with the request, so a
  // new order, or new numbers, keep them open.
  document.addEventListener("htmx:configRequest", function (evt) {
    var form = evt.detail.elt;
    if (!form.hasAttribute || !form.hasAttribute("data-tree-form")) return;
    var open = [];
    document.querySelectorAll("tbody.tnode a.toggle[aria-expanded=true]").forEach(function (a) {
      open.push(a.closest("tbody").getAttribute("data-entity-id"));
    });
    evt.detail.parameters["open"] = open;
  });
  document.addEventListener("htmx:load", function (evt) { drawCharts(evt.target); });

  // Forms opened "in a modal": links with hx-target="#modal-body" load the form's page as
  // a fragment; the same link without JavaScript opens that page. The modal opens when the
  // form arrives, and closes on Cancel, the close button or Escape (the dialog's own).
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target.id !== "modal-body") return;
    var dialog = document.getElementById("modal");
    if (!dialog.open) dialog.showModal();
    var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  });
  document.addEventListener("click", function (evt) {
    var closer = evt.target.closest ? evt.target.closest("[data-close-modal]") : null;
    var dialog = closer && closer.closest("dialog");
    if (!dialog) return;
    evt.preventDefault();
    dialog.close();
  });
  // "Tick every row on this page" (the near-limit view's bulk grant, a dry run): the
  // checkbox ticks or unticks the enabled row checkboxes of its own table.
  document.addEventListener("change", function (evt) {
    var all = evt.target;
    if (!all.matches || !all.matches("input[data-check-all]")) return;
    all.closest("table").querySelectorAll("tbody input[type=checkbox][name=row]:not(:disabled)").forEach(function (box) {
      box.checked = all.checked;
    });
  });
  document.addEventListener("close", function (evt) {
    if (evt.target.id === "modal") document.getElementById("modal-body").innerHTML = "";
  }, true);
})();
