// The conversation page: a saved reply fills the reply box, to read and edit before
// Send. Without this script the same button sends the saved reply as it is.
(function () {
  "use strict";
  var box = document.getElementById("reply-text");
  if (!box) { return; }
  document.querySelectorAll("[data-saved-text]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      box.value = button.getAttribute("data-saved-text");
      box.focus();
    });
  });
})();
