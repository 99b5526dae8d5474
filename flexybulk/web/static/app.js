// flexybulk web page: the few things a form cannot do alone. Everything works without this file;
// it adds drag and drop, a size check before a long upload, and guards against a second click.
(function () {
  "use strict";
  function ready(fn) { if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn); }
  function sizeText(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB"; }

  ready(function () {
    var zone = document.getElementById("dropzone");
    if (zone) {
      var input = zone.querySelector("input[type=file]");
      var chosen = document.getElementById("chosen");
      var error = document.getElementById("size-error");
      var max = parseInt(zone.dataset.maxSize, 10);
      var show = function () {
        var f = input.files && input.files[0];
        chosen.textContent = f ? f.name + " (" + sizeText(f.size) + ")" : "";
        if (f && f.size > max) {
          error.textContent = zone.dataset.tooLarge.replace("{size}", sizeText(f.size)).replace("{limit}", sizeText(max));
          error.hidden = false;
        } else { error.hidden = true; }
      };
      input.addEventListener("change", show);
      ["dragenter", "dragover"].forEach(function (e) { zone.addEventListener(e, function (ev) { ev.preventDefault(); zone.classList.add("over"); }); });
      ["dragleave", "drop"].forEach(function (e) { zone.addEventListener(e, function () { zone.classList.remove("over"); }); });
      zone.addEventListener("drop", function (ev) {
        ev.preventDefault();
        if (ev.dataTransfer && ev.dataTransfer.files.length) { input.files = ev.dataTransfer.files; show(); }
      });
      zone.addEventListener("submit", function (ev) {
        var f = input.files && input.files[0];
        if (f && f.size > max) { ev.preventDefault(); show(); error.focus(); }
      });
    }
  });

  // A form that starts something is sent once: the button is disabled after the first submit.
  // (The server refuses a second start anyway; this only spares the person a confusing page.)
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("once")) return;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    setTimeout(function () { form.querySelectorAll("button").forEach(function (b) { b.disabled = true; }); }, 0);
  }, true);

  // The progress page asks the server every second. When it cannot reach it (the server stopped, the
  // network went), it says so at once instead of showing old figures as live, and greys them and the stop
  // button; the next answer that gets through clears it (a fresh user's find).
  function lostContact(lost) {
    var banner = document.getElementById("lost-contact");
    var body = document.getElementById("progress-body");
    if (!banner) return;
    if (!lost) { banner.hidden = true; return; }
    if (banner.hidden) {
      banner.textContent = banner.dataset.text.replace("{time}", new Date().toLocaleTimeString());
      banner.hidden = false;
    }
    if (body) {
      body.classList.add("stale");
      body.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }
  }
  function polled(ev) { return ev.detail && ev.detail.elt && ev.detail.elt.id === "progress-body"; }
  document.addEventListener("htmx:sendError", function (ev) { if (polled(ev)) lostContact(true); });
  document.addEventListener("htmx:responseError", function (ev) { if (polled(ev)) lostContact(true); });
  // (Before the swap: the polled element is replaced by an outerHTML swap, and a detached one's events never
  // reach the document.)
  document.addEventListener("htmx:beforeSwap", function (ev) {
    if (polled(ev) && ev.detail.xhr && ev.detail.xhr.status < 400) lostContact(false);
  });

  // Links that act as buttons answer Space as well as Enter.
  document.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if ((ev.key === " " || ev.key === "Spacebar") && el.getAttribute && el.getAttribute("role") === "button" && el.tagName === "A") {
      ev.preventDefault(); el.click();
    }
  });

  // After htmx swaps in a cell editor, the cursor goes into it; after a fix, back to the fixed row.
  document.addEventListener("htmx:afterSettle", function (ev) {
    var focus = ev.detail.elt && ev.detail.elt.querySelector && ev.detail.elt.querySelector("[data-autofocus]");
    if (focus) { focus.focus(); if (focus.select) focus.select(); return; }
    var id = ev.detail.requestConfig && ev.detail.requestConfig.elt && ev.detail.requestConfig.elt.querySelector &&
      ev.detail.requestConfig.elt.querySelector("input[name=row]");
    if (id) {
      var row = document.getElementById("row-" + id.value);
      var link = row && row.querySelector("a.cell");
      if (link) link.focus();
    }
  });
  // "Go to the first problem": the cursor goes onto that cell (when it is on this page of the grid).
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest && ev.target.closest("a.skip-problem");
    if (!link) return;
    var cell = document.querySelector('td[data-row="' + link.dataset.row + '"][data-column="' +
      (window.CSS && CSS.escape ? CSS.escape(link.dataset.column) : link.dataset.column) + '"] a.cell');
    if (cell) { ev.preventDefault(); cell.scrollIntoView({block: "center"}); cell.focus(); }
  });
  // Enter in the list of types or departments applies the fix, as Enter in a text field does.
  document.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (ev.key !== "Enter" || el.tagName !== "SELECT" || !el.form || !el.form.classList.contains("editor")) return;
    ev.preventDefault();
    if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
  });
  // Escape closes the cell editor.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    var slot = document.querySelector(".editor-slot");
    if (slot && slot.contains(document.activeElement)) { slot.innerHTML = ""; }
  });
})();
