// Draws every chart on the page (and in HTMX-swapped fragments) from its inert JSON spec.
(function () {
  "use strict";
  function draw(root) {
    root.querySelectorAll("figure.chart").forEach(function (figure) {
      if (figure.dataset.drawn) return;
      figure.dataset.drawn = "1";
      var spec = JSON.parse(figure.querySelector("script.chart-spec").textContent);
      window.vegaEmbed(figure.querySelector(".chart-body"), spec, {
        actions: { export: true, source: false, compiled: false, editor: false },
        renderer: "svg",
      }).catch(function (error) {
        figure.querySelector(".chart-body").textContent = "The chart could not be drawn: " + error;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
