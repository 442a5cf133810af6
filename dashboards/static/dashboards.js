// Draws every chart on the page (and in HTMX-swapped fragments) from its inert JSON spec, and
// shows a failed partial update in place with a "Try again" button (HTMX alone does not swap
// non-2xx answers: the part would stay as it was, e.g. "Computing…", with no word of the error).
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

  // The requests that failed, by the number their error fragment carries in `data-retry`.
  var failed = {};
  var failures = 0;

  function remember(detail) {
    failures += 1;
    failed[failures] = {
      verb: (detail.requestConfig && detail.requestConfig.verb) || "get",
      path: detail.pathInfo ? detail.pathInfo.requestPath : detail.requestConfig.path,
      source: detail.elt,
      target: detail.target,
    };
    return failures;
  }

  function fragment(number, message) {
    var box = document.createElement("div");
    box.className = "error-fragment";
    box.setAttribute("role", "alert");
    box.setAttribute("data-error-fragment", "");
    box.setAttribute("data-retry", String(number));
    var text = document.createElement("p");
    text.className = "problem";
    text.textContent = message;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "retry";
    button.textContent = "Try again";
    box.appendChild(text);
    box.appendChild(button);
    return box;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    if (!detail.isError || detail.xhr.status === 401) return;
    var number = remember(detail);
    var body = detail.serverResponse || "";
    if (body.indexOf("data-error-fragment") === -1) {
      // Not one of ours (a proxy's page, say): say what happened in our own words.
      var holder = document.createElement("div");
      holder.appendChild(fragment(number, "The server answered " + detail.xhr.status + "."));
      body = holder.innerHTML;
    } else {
      body = body.replace("data-error-fragment", 'data-error-fragment data-retry="' + number + '"');
    }
    detail.serverResponse = body;
    detail.shouldSwap = true;
    detail.isError = false; // shown on the page: not an error for the console
  });

  document.addEventListener("htmx:sendError", function (event) {
    var detail = event.detail;
    var target = detail.target || detail.elt;
    if (!target) return;
    var number = remember(detail);
    target.replaceChildren(fragment(number, "The server could not be reached."));
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".error-fragment button.retry");
    if (!button) return;
    var box = button.closest("[data-retry]");
    var request = box && failed[box.dataset.retry];
    if (!request) return;
    delete failed[box.dataset.retry];
    button.disabled = true;
    var inPage = request.target && document.body.contains(request.target);
    var options = { source: request.source, target: inPage ? request.target : box };
    if (!inPage) options.swap = "outerHTML";
    window.htmx.ajax(request.verb.toUpperCase(), request.path, options);
  });

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
