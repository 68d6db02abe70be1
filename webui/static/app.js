// campaignd console: the little behaviour the pages need beyond htmx.
// No inline script anywhere (the CSP allows only files from this origin).
(function () {
  "use strict";
  // Every htmx request carries the session's CSRF token. htmx 4 does not
  // inherit hx-headers implicitly, so the header is added here for all.
  document.addEventListener("htmx:config:request", function (evt) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && evt.detail && evt.detail.ctx) {
      evt.detail.ctx.request.headers["X-CSRF-Token"] = meta.content;
    }
  });
  // A request that never got an answer (network down, server stopped)
  // says so in the flash area instead of failing silently.
  document.addEventListener("htmx:error", function (evt) {
    var ctx = evt.detail && evt.detail.ctx;
    if (ctx && ctx.response) return; // an HTTP error: the server's answer was swapped
    var flash = document.getElementById("flash");
    if (!flash) return;
    var p = document.createElement("p");
    p.className = "flash flash-error";
    p.setAttribute("role", "alert");
    var msg = document.querySelector('meta[name="msg-offline"]');
    p.textContent = msg ? msg.content : "The server did not answer. Check the connection and try again.";
    flash.replaceChildren(p);
  });
})();
