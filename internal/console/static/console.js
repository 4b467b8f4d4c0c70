// inferq console: the only script. It keeps a page live by listening to
// its Server-Sent Events: each "fragment" event carries the new content
// of one element, rendered (and escaped) by the server.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-live");
  if (!url || !window.EventSource) {
    return;
  }
  var es = new EventSource(url);
  es.addEventListener("fragment", function (e) {
    var f = JSON.parse(e.data);
    var el = document.getElementById(f.id);
    if (el) {
      el.innerHTML = f.html;
    }
  });
  window.addEventListener("pagehide", function () { es.close(); });
})();
