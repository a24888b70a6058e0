// CredBroker console: progressive enhancement only. Every page works without this script.
// Regions marked data-live="<url>" refresh every few seconds (pending approvals, audit tail),
// but never while the operator is using a control inside them or has changed a form there.
(function () {
  "use strict";
  var intervalMs = 4000;
  function busy(region) {
    if (region.contains(document.activeElement) && document.activeElement !== region) { return true; }
    return region.getAttribute("data-dirty") === "1";
  }
  function refresh(region) {
    if (document.hidden || busy(region)) { return; }
    fetch(region.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || busy(region)) { return; }
        // Replace only when the content changed (the server marks it with data-version), so what the
        // operator is looking at, or about to click, is not swapped for an identical copy.
        var incoming = document.createElement("template");
        incoming.innerHTML = html;
        var next = incoming.content.firstElementChild, current = region.firstElementChild;
        if (next && current && next.getAttribute("data-version") !== null &&
            next.getAttribute("data-version") === current.getAttribute("data-version")) { return; }
        region.innerHTML = html;
      })
      .catch(function () { /* keep the current content; the next round tries again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var regions = document.querySelectorAll("[data-live]");
    Array.prototype.forEach.call(regions, function (region) {
      region.addEventListener("input", function () { region.setAttribute("data-dirty", "1"); });
      region.addEventListener("change", function () { region.setAttribute("data-dirty", "1"); });
      setInterval(function () { refresh(region); }, intervalMs);
    });
  });
})();
