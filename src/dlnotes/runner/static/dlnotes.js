// dlnotes book: small enhancements of the static pages (no network, no library).
//  1. The link to the other language keeps the reader's section: both pages come from the same
//     notebook and Sphinx keeps the section ids of the source in the translation, so the link
//     carries the id of the section in view.
//  2. Numbers in results tables are right-aligned.
(function () {
  "use strict";

  function sectionInView() {
    var all = document.querySelectorAll("article section[id]"), id = "";
    for (var i = 0; i < all.length; i++) {
      if (all[i].getBoundingClientRect().top <= window.innerHeight / 3) id = all[i].id;
    }
    return id;
  }

  function keepSection(event) {
    var link = event.currentTarget, base = link.getAttribute("href").split("#")[0];
    var id = sectionInView();
    link.setAttribute("href", id ? base + "#" + id : base);
  }

  var NUMBER = /^[−\-+]?[\d.,]+(e[−\-+]?\d+)?\s*(%|s|×)?$/i;

  function alignNumbers() {
    var cells = document.querySelectorAll(
      ".cell_output table td, .cell_output table th, table.dlnotes-overview td");
    for (var i = 0; i < cells.length; i++) {
      var text = cells[i].textContent.trim();
      if (text && NUMBER.test(text) && !(cells[i].parentNode.parentNode.tagName === "THEAD")) {
        cells[i].classList.add("dlnotes-num");
      }
    }
  }

  // The link sits in the article's sticky header, so that reaching it does not scroll the page
  // back to the top (the section in view is what it keeps).
  function moveSwitch() {
    var box = document.querySelector(".dlnotes-lang-switch");
    var header = document.querySelector(".article-header-buttons");
    if (!box || !header) return;
    header.insertBefore(box, header.firstChild);
  }

  document.addEventListener("DOMContentLoaded", function () {
    moveSwitch();
    var links = document.querySelectorAll("a.dlnotes-twin");
    for (var i = 0; i < links.length; i++) {
      links[i].addEventListener("click", keepSection);
      links[i].addEventListener("auxclick", keepSection);
    }
    alignNumbers();
  });
})();
