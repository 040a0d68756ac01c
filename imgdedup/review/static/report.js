// The report's script. It reads the JSON data block and builds every node with
// createElement/textContent: data is never parsed as markup.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = D.pageSize, ALL = D.clusters, shown = ALL, page = 0, selected = [], hay = null, errShown = 0;
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function human(n) {
    var v = n, units = ["B", "KB", "MB", "GB", "TB"];
    for (var k = 0; k < units.length; k++) {
      if (v < 1024 || k === units.length - 1) return k === 0 ? Math.round(v) + " B" : v.toFixed(1) + " " + units[k];
      v /= 1024;
    }
  }
  // member: [name, folder, width, height, format, bytes, distance, keeper, thumb, digest, similarity|null, nameUrl|null,
  //          tier|null, why|null, scores|null]
  function info(c, m) {
    var f = D.folders[m[1]];
    return {cluster: c[0], name: m[0], folder: f[0], path: f[0] + m[0], width: m[2], height: m[3],
            format: D.formats[m[4]], bytes: m[5], distance: m[6], keeper: m[7] === 1, digest: m[9], similarity: m[10],
            tier: m.length > 12 ? m[12] : null, why: m.length > 13 ? m[13] : null, scores: m.length > 14 ? m[14] : null,
            thumb: m[8] === 1 ? D.thumbs + "/" + m[9] + D.thumbSuffix : null,
            url: D.rootUrl ? D.rootUrl + f[1] + (m[11] ? m[11] : encodeURIComponent(m[0])) : null};
  }
  function haystack() {
    if (hay === null) {
      hay = new Array(ALL.length);
      for (var k = 0; k < ALL.length; k++) {
        var ms = ALL[k][2], parts = new Array(ms.length);
        for (var j = 0; j < ms.length; j++) parts[j] = (D.folders[ms[j][1]][0] + ms[j][0]).toLowerCase();
        hay[k] = parts.join("\n");
      }
    }
    return hay;
  }
  function query() { return $("search").value.trim().toLowerCase(); }
  function filter() {
    var q = query();
    if (!q) { shown = ALL; } else {
      var h = haystack(); shown = [];
      for (var k = 0; k < ALL.length; k++) if (h[k].indexOf(q) >= 0) shown.push(ALL[k]);
    }
    page = 0; render();
  }
  function figure(c, m, q) {
    var it = info(c, m);
    var fig = el("figure", it.keeper ? "keeper" : "member");
    if (q && it.path.toLowerCase().indexOf(q) >= 0) fig.classList.add("match");
    fig.tabIndex = 0;
    fig.title = it.path;
    var pic = el("div", "pic");
    if (it.thumb) {
      var img = el("img");
      img.loading = "lazy"; img.decoding = "async"; img.alt = it.name; img.src = it.thumb;
      pic.appendChild(img);
    } else {
      pic.appendChild(el("span", "note", "(no preview)"));
    }
    fig.appendChild(pic);
    var cap = el("figcaption");
    var nameLine = el("div", "name");
    if (it.keeper) nameLine.appendChild(el("span", "badge", "keeper"));
    else if (it.tier) nameLine.appendChild(el("span", "tier tier-" + it.tier, it.tier));
    nameLine.appendChild(el("span", "path", it.name));
    cap.appendChild(nameLine);
    cap.appendChild(el("div", "folder", it.folder || "(top folder)"));
    cap.appendChild(el("div", "meta", it.width + " \u00d7 " + it.height + " \u00b7 " + it.format + " \u00b7 " + human(it.bytes)));
    cap.appendChild(el("div", "meta", it.keeper ? "keeper" : "distance " + it.distance + (it.similarity === null ? "" : " \u00b7 similarity " + it.similarity)));
    if (it.why) cap.appendChild(el("div", "meta why", "why: " + it.why));
    fig.appendChild(cap);
    function pick() { choose(fig, it); }
    fig.addEventListener("click", pick);
    fig.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); } });
    return fig;
  }
  function section(c, q) {
    var s = el("section", "cluster");
    s.id = "cluster-" + c[0];
    s.appendChild(el("h3", null, "Cluster " + c[0] + " \u00b7 " + c[2].length + " files \u00b7 " + human(c[1]) + " reclaimable"));
    var box = el("div", "members");
    for (var j = 0; j < c[2].length; j++) box.appendChild(figure(c, c[2][j], q));
    s.appendChild(box);
    return s;
  }
  function render() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    if (page >= pages) page = pages - 1;
    var q = query(), list = $("clusters"), frag = document.createDocumentFragment();
    var end = Math.min(shown.length, (page + 1) * PAGE);
    for (var k = page * PAGE; k < end; k++) frag.appendChild(section(shown[k], q));
    list.replaceChildren(frag);
    selected = [];
    $("cluster-count").textContent = String(shown.length);
    $("page-info").textContent = shown.length ? "clusters " + (page * PAGE + 1) + "\u2013" + end + " of " + shown.length + ", page " + (page + 1) + " of " + pages : "no cluster matches";
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
  }
  function choose(fig, it) {
    var at = -1;
    for (var k = 0; k < selected.length; k++) if (selected[k].fig === fig) at = k;
    if (at >= 0) { selected.splice(at, 1); fig.classList.remove("selected"); return; }
    selected.push({fig: fig, it: it});
    fig.classList.add("selected");
    if (selected.length === 2) {
      var a = selected[0], b = selected[1];
      a.fig.classList.remove("selected"); b.fig.classList.remove("selected");
      selected = [];
      openCompare(a.it, b.it);
    }
  }
  function pane(it, other) {
    var p = el("div", "pane"), big = el("div", "big");
    if (it.url || it.thumb) {
      var img = el("img");
      img.alt = it.name;
      if (it.url) {
        img.addEventListener("error", function () { if (it.thumb && img.getAttribute("src") !== it.thumb) img.src = it.thumb; });
        img.src = it.url;
      } else { img.src = it.thumb; }
      big.appendChild(img);
    } else { big.appendChild(el("span", "note", "(no preview)")); }
    p.appendChild(big);
    var dl = el("dl");
    function row(k, v, cls) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", cls || null, v)); }
    row("name", it.name);
    row("folder", it.folder || "(top folder)");
    row("cluster", it.cluster);
    row("role", it.keeper ? "keeper" : "duplicate");
    if (it.tier) row("tier", it.tier);
    row("resolution", it.width + " \u00d7 " + it.height + " (" + (it.width * it.height / 1e6).toFixed(2) + " MP)");
    row("format", it.format);
    row("file size", human(it.bytes) + " (" + it.bytes + " bytes)");
    row("distance to keeper", it.distance);
    if (it.similarity !== null) row("similarity to keeper", it.similarity);
    if (it.why) row("why here", it.why);
    if (it.scores) for (var key in it.scores) row(key, String(it.scores[key]));
    row("digest", it.digest);
    if (other.digest === it.digest) row("bytes", "identical to the other file", "same");
    p.appendChild(dl);
    return p;
  }
  function openCompare(a, b) {
    var box = $("compare-panes");
    box.replaceChildren(pane(a, b), pane(b, a));
    $("compare").hidden = false;
    $("compare-close").focus();
  }
  function closeCompare() { $("compare").hidden = true; $("compare-panes").replaceChildren(); }
  function moreErrors() {
    var body = $("error-rows"), end = Math.min(D.errors.length, errShown + 200), frag = document.createDocumentFragment();
    for (var k = errShown; k < end; k++) {
      var tr = el("tr");
      tr.appendChild(el("td", "path", D.errors[k][0]));
      tr.appendChild(el("td", null, D.errors[k][1]));
      frag.appendChild(tr);
    }
    body.appendChild(frag);
    errShown = end;
    $("more-errors").hidden = errShown >= D.errors.length;
  }
  var timer = null;
  $("search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(filter, 120); });
  $("search").addEventListener("keydown", function (ev) { if (ev.key === "Enter") { clearTimeout(timer); filter(); } });
  $("prev").addEventListener("click", function () { if (page > 0) { page--; render(); $("clusters-top").scrollIntoView(); } });
  $("next").addEventListener("click", function () { page++; render(); $("clusters-top").scrollIntoView(); });
  $("compare-close").addEventListener("click", closeCompare);
  $("compare").addEventListener("click", function (ev) { if (ev.target === $("compare")) closeCompare(); });
  document.addEventListener("keydown", function (ev) { if (ev.key === "Escape" && !$("compare").hidden) closeCompare(); });
  $("more-errors").addEventListener("click", moreErrors);
  $("search").disabled = false;
  render();
  moreErrors();
  document.body.setAttribute("data-ready", "1");
})();
