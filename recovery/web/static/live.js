// Keeps parts of a page current without a reload: every element with data-live-url is
// fetched again every data-live-every seconds (default 5) and replaced when it changed.
// An element's data-live-count (a number the server put in the fragment's first child)
// goes in the tab's title, so a background tab shows "(3) Tasks".
// With data-live-version the poll says which version it has (X-Live-Version) and the
// server answers 204 while nothing changed. While someone types in the element (focus is
// inside it) it is left alone: a refresh must not eat a half-written note.
(function () {
  "use strict";
  var baseTitle = document.title;

  function countInTitle(el) {
    var counted = el.querySelector("[data-live-count]");
    if (counted) {
      var n = parseInt(counted.getAttribute("data-live-count"), 10);
      document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
    }
  }

  // Signed out elsewhere (another tab, an administrator, the session's age): the list
  // stops updating, and saying so is what keeps it from looking current while new
  // tasks wait unseen.
  function stoppedNotice(el) {
    if (document.getElementById("live-stopped")) { return; }
    var note = document.createElement("p");
    note.id = "live-stopped";
    note.className = "flash flash-warn live-stopped";
    note.setAttribute("role", "alert");
    note.appendChild(document.createTextNode("You were signed out, so this list is no longer updating. "));
    var link = document.createElement("a");
    link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    link.textContent = "Sign in again";
    note.appendChild(link);
    el.parentNode.insertBefore(note, el);
    document.title = "Signed out · " + baseTitle;
  }

  function refresh(el) {
    var url = el.getAttribute("data-live-url");
    var headers = { "X-Requested-With": "live" };
    var version = el.getAttribute("data-live-version");
    if (version) { headers["X-Live-Version"] = version; }
    fetch(url, { credentials: "same-origin", headers: headers })
      .then(function (response) {
        if (response.status === 401 || response.redirected) {
          el.setAttribute("data-live-stopped", "signed-out");
          stoppedNotice(el);
          return null;
        }
        if (response.status === 204 || !response.ok) { return null; }
        var next = response.headers.get("X-Live-Version");
        return response.text().then(function (html) { return { html: html, version: next }; });
      })
      .then(function (got) {
        if (!got) { return; }
        if (el.contains(document.activeElement) && document.activeElement !== el) { return; }
        if (got.html !== el.getAttribute("data-live-last")) {
          var atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          el.innerHTML = got.html;
          el.setAttribute("data-live-last", got.html);
          if (el.hasAttribute("data-live-stick") || atBottom) { el.scrollTop = el.scrollHeight; }
        }
        if (got.version) { el.setAttribute("data-live-version", got.version); }
        countInTitle(el);
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  function start(el) {
    var every = parseFloat(el.getAttribute("data-live-every") || "5") * 1000;
    el.setAttribute("data-live-last", el.innerHTML);
    el.scrollTop = el.scrollHeight;
    countInTitle(el);
    setInterval(function () {
      if (!el.hasAttribute("data-live-stopped")) { refresh(el); }
    }, every);
  }

  document.querySelectorAll("[data-live-url]").forEach(start);
})();
