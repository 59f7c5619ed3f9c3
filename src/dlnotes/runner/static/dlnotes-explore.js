// dlnotes book: draw the chapters' explorers (Vega-Lite specs made in the run) with the Vega
// scripts the site serves (dlnotes-vega.js). No kernel and no network: every control picks among
// results precomputed in the run. A slider gets a play button that steps through its values,
// which is what the book's GIFs did for a few runs. An explorer that fails to draw says so in the
// page and in the console, and leaves the static figures around it in place.
(function () {
  "use strict";

  var WORDS = { en: ["play", "pause"], zh: ["播放", "暂停"] };

  function words() {
    return (document.documentElement.lang || "en").indexOf("zh") === 0 ? WORDS.zh : WORDS.en;
  }

  // A slider runs over the positions of its values (dlnotes.explore.slider): the rows carry the
  // value in `field` and its position in `field_i`. Read the pairs back from the spec's data.
  function sliderValues(spec, field) {
    var values = {}, sets = spec.datasets || {};
    Object.keys(sets).forEach(function (key) {
      sets[key].forEach(function (row) {
        if (row[field + "_i"] !== undefined && row[field] !== undefined) {
          values[row[field + "_i"]] = row[field];
        }
      });
    });
    return values;
  }

  // Vega prints the position beside a slider; show the value it stands for instead.
  function showValue(range, values) {
    var shown = range.parentNode.querySelector(".vega-bind-value") || range.nextElementSibling;
    if (!shown || values[range.value] === undefined) return;
    shown.textContent = String(values[range.value]);
  }

  function addPlay(box, view, spec) {
    var ranges = box.querySelectorAll(".vega-bind input[type=range]");
    for (var i = 0; i < ranges.length; i++) {
      (function (range) {
        var name = range.getAttribute("name"), timer = null, button = document.createElement("button");
        var values = sliderValues(spec, name.replace(/^p_/, ""));
        range.addEventListener("input", function () { showValue(range, values); });
        showValue(range, values);
        var say = words();
        button.type = "button";
        button.className = "dlnotes-play";
        button.textContent = "▶";
        button.setAttribute("aria-label", say[0]);
        button.title = say[0];
        button.addEventListener("click", function () {
          if (timer) {
            clearInterval(timer);
            timer = null;
            button.textContent = "▶";
            button.title = say[0];
            return;
          }
          var max = Number(range.max), min = Number(range.min);
          if (Number(view.signal(name)) >= max) view.signal(name, min).run();
          button.textContent = "❚❚";
          button.title = say[1];
          timer = setInterval(function () {
            var next = Number(view.signal(name)) + 1;
            view.signal(name, next).run();
            range.value = next;
            range.dispatchEvent(new Event("input"));  // the number beside the slider follows
            if (next >= max) button.click();
          }, 450);
        });
        range.parentNode.insertBefore(button, range);
      })(ranges[i]);
    }
  }

  function draw(box) {
    var data = box.querySelector('script[type="application/json"]');
    var view = box.querySelector(".dlnotes-explorer-view");
    if (!data || !view) return;
    var spec = JSON.parse(data.textContent);
    window.vegaEmbed(view, spec, { actions: false, renderer: "svg" }).then(function (result) {
      box.dlnotesView = result.view;  // the tests and the curious reach the Vega view here
      addPlay(box, result.view, spec);
      box.setAttribute("data-ready", "1");
    }).catch(function (error) {
      box.setAttribute("data-failed", String(error));
      console.error("dlnotes explorer:", error);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("div.dlnotes-explorer");
    if (boxes.length && !window.vegaEmbed) {
      console.error("dlnotes explorer: dlnotes-vega.js did not load");
      return;
    }
    for (var i = 0; i < boxes.length; i++) draw(boxes[i]);
  });
})();
