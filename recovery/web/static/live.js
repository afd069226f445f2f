// Keeps parts of a page current without a reload: every element with data-live-url is
// fetched again every data-live-every seconds (default 5) and replaced when it changed.
// An element's data-live-count (a number the server put in the fragment's first child)
// goes in the tab's title, so a background tab shows "(3) Tasks".
(function () {
  "use strict";
  var baseTitle = document.title;

  function refresh(el) {
    var url = el.getAttribute("data-live-url");
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) {
          el.setAttribute("data-live-stopped", "signed-out");
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        if (html !== el.getAttribute("data-live-last")) {
          var atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          el.innerHTML = html;
          el.setAttribute("data-live-last", html);
          if (el.hasAttribute("data-live-stick") || atBottom) { el.scrollTop = el.scrollHeight; }
        }
        var counted = el.querySelector("[data-live-count]");
        if (counted) {
          var n = parseInt(counted.getAttribute("data-live-count"), 10);
          document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
        }
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  function start(el) {
    var every = parseFloat(el.getAttribute("data-live-every") || "5") * 1000;
    el.setAttribute("data-live-last", el.innerHTML);
    el.scrollTop = el.scrollHeight;
    setInterval(function () {
      if (!el.hasAttribute("data-live-stopped")) { refresh(el); }
    }, every);
  }

  document.querySelectorAll("[data-live-url]").forEach(start);
})();
