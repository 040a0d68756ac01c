// The review page's keyboard and the compare view. Every decision is an ordinary
// form POST (with the token); this script only presses those buttons, and builds
// nodes with properties, never from markup.
(function () {
  "use strict";
  function $(id) { return document.getElementById(id); }

  // --- the cluster list: keyboard --------------------------------------------------------
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.cluster"));
  var current = 0;
  function focusParam() {
    var m = /[?&]focus=(\d+)/.exec(window.location.search);
    return m ? m[1] : null;
  }
  function select(k, scroll) {
    if (!sections.length) return;
    current = Math.max(0, Math.min(sections.length - 1, k));
    sections.forEach(function (s, j) { s.classList.toggle("current", j === current); });
    if (scroll) sections[current].scrollIntoView({block: "nearest"});
  }
  function press(selector) {
    var scope = sections[current];
    var button = scope ? scope.querySelector(selector) : null;
    if (button) button.click();
  }
  if (sections.length) {
    var wanted = focusParam(), start = 0;
    sections.forEach(function (s, j) { if (s.getAttribute("data-cluster") === wanted) start = j; });
    select(start, wanted !== null);
    sections.forEach(function (s, j) { s.addEventListener("click", function () { select(j, false); }); });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = ev.target && ev.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    var key = ev.key;
    if (!sections.length && key !== "u") return;
    if (key === "j" || key === "ArrowDown") {
      if (current === sections.length - 1 && $("next-page")) { $("next-page").click(); } else { select(current + 1, true); }
    } else if (key === "k" || key === "ArrowUp") {
      if (current === 0 && $("prev-page")) { $("prev-page").click(); } else { select(current - 1, true); }
    } else if (/^[1-9]$/.test(key)) {
      press("button.keep[data-key='" + key + "']");
    } else if (key === "n") {
      press("button.not-duplicates");
    } else if (key === "d") {
      press("button.done");
    } else if (key === "u") {
      var undo = document.querySelector("button.undo");
      if (undo) undo.click();
    } else { return; }
    ev.preventDefault();
  });

  // --- the compare view: zoom, blink, difference -------------------------------------------
  var box = $("compare");
  if (!box) { document.body.setAttribute("data-ready", "1"); return; }
  var a = $("img-1"), b = $("img-2"), blinkImg = $("blink-img"), canvas = $("diff-canvas"), timer = null;
  function zoom() {
    var z = parseFloat($("zoom").value);
    [a, b, blinkImg].forEach(function (img) { img.style.transform = "scale(" + z + ")"; });
    canvas.style.transform = "scale(" + z + ")";
    canvas.style.transformOrigin = "0 0";
  }
  function view(name) {
    box.setAttribute("data-view", name);
    box.querySelector(".panes").hidden = name !== "side";
    box.querySelector(".blink").hidden = name !== "blink";
    box.querySelector(".diff").hidden = name !== "diff";
    clearInterval(timer);
    if (name === "blink") {
      var shown = 0;
      blinkImg.src = a.src;
      timer = setInterval(function () { shown = 1 - shown; blinkImg.src = shown ? b.src : a.src; }, 600);
    }
    if (name === "diff") {
      var w = a.naturalWidth, h = a.naturalHeight, ctx = canvas.getContext("2d");
      canvas.width = w; canvas.height = h;
      ctx.globalCompositeOperation = "source-over";
      ctx.drawImage(a, 0, 0, w, h);
      ctx.globalCompositeOperation = "difference";
      ctx.drawImage(b, 0, 0, w, h);  // the other picture scaled onto the first: black where they agree
    }
  }
  $("zoom").addEventListener("input", zoom);
  $("view-side").addEventListener("click", function () { view("side"); });
  $("view-blink").addEventListener("click", function () { view("blink"); });
  $("view-diff").addEventListener("click", function () { view("diff"); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") $("back").click(); });
  document.body.setAttribute("data-ready", "1");
})();
