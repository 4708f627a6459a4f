// The dashboard's figures fetched again every minute, with the filters the page was opened with.
(function () {
  "use strict";
  var REFRESH_MS = 60000;
  var figures = document.getElementById("figures");
  if (!figures) { return; }

  function refresh() {
    fetch(figures.dataset.source, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        figures.innerHTML = html;  // the server's own template, every customer string escaped there
        figures.dataset.refreshedAt = new Date().toISOString();
      })
      .catch(function () { /* keep the figures shown; the next minute tries again */ });
  }

  setInterval(refresh, REFRESH_MS);
}());
