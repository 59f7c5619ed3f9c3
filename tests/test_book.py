"""The Chinese catalogs are complete, and the site builds in both languages with twin links."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from dlnotes.runner.book import build_language, write_root_index

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")


def _catalogs():
    return sorted(LOCALE.rglob("*.po"))


def _glue_keys(text: str, qualified: bool) -> list[str]:
    keys = []
    for ref in GLUE.findall(text):
        doc, sep, rest = ref.rpartition("::")
        assert not qualified or sep, f"translated glue reference {ref!r} must name its document"
        keys.append(rest)
    return sorted(keys)


def test_every_page_has_a_catalog():
    pages = ["intro", "overview", *(p.stem for p in (ROOT / "book" / "chapters").glob("*.ipynb"))]
    have = {p.stem for p in _catalogs()}
    assert set(pages) <= have


@pytest.mark.parametrize("po", _catalogs(), ids=lambda p: p.stem)
def test_catalog_complete_and_glue_matches(po):
    with po.open("rb") as f:
        catalog = read_po(f)
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"{po.name}: untranslated: {message.id[:60]!r}"
        assert not message.fuzzy, f"{po.name}: fuzzy: {message.id[:60]!r}"
        # A bare key fails inside a translated paragraph (DESIGN.md): translations name the doc.
        assert _glue_keys(message.id, False) == _glue_keys(message.string, True), message.id[:60]


def test_glue_key_parsing():
    assert _glue_keys("{glue:text}`acc:.1%` and {glue}`n`", False) == ["acc:.1%", "n"]
    assert _glue_keys("{glue:text}`/chapters/x.ipynb::acc:.1%`", True) == ["acc:.1%"]
    with pytest.raises(AssertionError, match="must name its document"):
        _glue_keys("{glue:text}`acc:.1%`", True)


@pytest.mark.slow
def test_catalogs_cover_every_message_in_the_book(tmp_path):
    build_language(ROOT / "book", tmp_path / "gettext", "en", builder="gettext")
    for pot in (tmp_path / "gettext").rglob("*.pot"):
        po = LOCALE / pot.relative_to(tmp_path / "gettext").with_suffix(".po")
        with pot.open("rb") as f:
            wanted = {m.id for m in read_po(f) if m.id}
        with po.open("rb") as f:
            have = {m.id for m in read_po(f) if m.id and m.string and not m.fuzzy}
        missing = wanted - have
        assert not missing, (
            f"{po.name} lacks translations (run `dlnotes i18n`): {sorted(missing)[:3]}"
        )


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.twins, self.imgs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "dlnotes-twin" in (attrs.get("class") or ""):
            self.twins.append(attrs["href"])
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for language, folder in (("en", "en"), ("zh_CN", "zh")):
        build_language(ROOT / "book", site / folder, language)
    write_root_index(site, ["en", "zh_CN"])
    return site


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.mark.slow
def test_every_page_links_to_its_twin(site):
    pages = [
        p for p in (site / "en").rglob("*.html") if not p.name.startswith(("genindex", "search"))
    ]
    assert len(pages) >= 3
    for folder, other in (("en", "zh"), ("zh", "en")):
        for page in (site / folder).rglob("*.html"):
            if page.name.startswith(("genindex", "search")) or page.parent.name == "_static":
                continue
            if 'http-equiv="Refresh"' in page.read_text(encoding="utf-8"):
                continue  # Jupyter Book's redirect from index.html to the root page
            twins = _parse(page).twins
            assert len(twins) == 1, f"{page} has {len(twins)} language links"
            target = (page.parent / twins[0]).resolve()
            assert target == (site / other / page.relative_to(site / folder)).resolve()
            assert target.exists()


@pytest.mark.slow
def test_chinese_pages_are_translated_and_searchable(site):
    chapter = _parse(site / "zh" / "chapters" / "07_activations.html")
    text = "".join(chapter.text)
    assert "激活函数" in text
    assert any(src.startswith("data:image/gif;base64,") for src in chapter.imgs)
    index = (site / "zh" / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(index[index.index("(") + 1 : index.rindex(")")])["terms"]
    assert "非线性" in terms and "激活" in terms  # jieba cut the Chinese text into words
    root = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="en/index.html"' in root and 'href="zh/index.html"' in root


@pytest.mark.slow
def test_chinese_headings_are_translated(site):
    # A heading whose translation Sphinx rejects (say "3. 标题", re-parsed as a list) stays English.
    pages = sorted((site / "zh" / "chapters").glob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        headings = re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", text, flags=re.S)
        english = [
            h
            for h in (re.sub(r"<[^>]+>", "", h).strip() for h in headings)
            if h and not re.search(r"[\u4e00-\u9fff]", h)
        ]
        assert not english, f"{page.name}: untranslated headings {english}"


def _catalog(chapter: str) -> dict[str, str]:
    with (LOCALE / "chapters" / f"{chapter}.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and m.string}


@pytest.mark.slow
def test_chinese_pages_translate_the_result_tables(site):
    from dlnotes.runner.tables import table_messages, translate_tables

    for page in sorted((site / "zh" / "chapters").glob("*.html")):
        catalog = _catalog(page.stem)
        english = (site / "en" / "chapters" / page.name).read_text(encoding="utf-8")
        chinese = page.read_text(encoding="utf-8")
        messages = table_messages(english)
        # Every word of the English page's tables is in the catalog ...
        assert messages and not [m for m in messages if m not in catalog], page.name
        _, on_english = translate_tables(english, lambda m, c=catalog: c.get(m, m))
        _, left = translate_tables(chinese, lambda m, c=catalog: c.get(m, m))
        # ... and on the Chinese page none is left in English (names stay as they are).
        assert on_english >= 10 and left == 0, (page.name, on_english, left)
    chapter = (site / "zh" / "chapters" / "07_activations.html").read_text(encoding="utf-8")
    assert re.search(r">\d+ 次中 \d+ 次</td>", chapter)  # "4 of 5": numbers kept, Chinese order


@pytest.mark.slow
def test_overview_table_lists_the_reports_numbers(site):
    for folder, header in (("en", "Lab report"), ("zh", "实验报告")):
        page = (site / folder / "overview.html").read_text(encoding="utf-8")
        assert "dlnotes-overview" in page and header in page and "not run yet" not in page
        # Chapter titles link to the section each number comes from (ids match across languages).
        assert 'href="chapters/02_cnn.html#resnet-18-ablations-on-small-imagenet-images"' in page
        # Counts say what they are out of; a run below the reports' scale is marked.
        assert re.search(r">\d+ of \d+<" if folder == "en" else r">\d+（共 \d+）<", page)
        assert 'class="dlnotes-scale-differs' in page or "dlnotes-scale-differs" in page
    en = (site / "en" / "overview.html").read_text(encoding="utf-8")
    assert ">Convolutional networks: from a first CNN to ResNet ablations<" in en
    assert "ABL_EPOCHS 25 → " in en  # the report's scale → this run's
    # A row's own report scale wins over the chapter's `full` profile (06's √d study).
    assert "SQRT_EPOCHS 50 → 5" in en


@pytest.mark.slow
def test_datasets_page_lists_the_registry(site):
    for folder, header in (("en", "Mirror folder"), ("zh", "镜像目录")):
        page = (site / folder / "datasets.html").read_text(encoding="utf-8")
        assert header in page and "horse2zebra-subset500" in page and "Maas" in page


@pytest.mark.slow
def test_benchmark_page_shows_the_committed_results_in_both_languages(site):
    result = json.loads(
        (ROOT / "book" / "bench" / "cpu.json").read_text()
    )  # machine words are split into spans
    peers = (ROOT / "book" / "bench" / "cpu-peers.json").exists()
    cifar = (ROOT / "book" / "bench" / "cpu-peers-cifar10.json").exists()
    overhead = (ROOT / "book" / "bench" / "cpu-overhead.json").exists()
    for folder, header, peers_header, cifar_header, overhead_header, missing in (
        ("en", "Samples/s", "Median wall time", "× airbench94", "Bare loop (samples/s)",
         "Not measured yet"),
        ("zh", "样本/秒", "总用时中位数", "相对 airbench94", "裸循环（样本/秒）", "尚未测量"),
    ):  # fmt: skip
        page = (site / folder / "benchmarks.html").read_text(encoding="utf-8")
        assert header in page and all(word in page for word in result["machine"].split())
        tables = 2 + peers + cifar + overhead + (ROOT / "book" / "bench" / "cuda.json").exists()
        assert page.count("<table") == tables and (peers_header in page) == peers
        assert (cifar_header in page) == cifar and (overhead_header in page) == overhead
        assert "cpu.png" in page
        if not (ROOT / "book" / "bench" / "cuda.json").exists():
            assert missing in page


def _text(dom: str) -> str:
    """Return the visible text of an HTML document (scripts and styles left out)."""
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", "", dom, flags=re.S)
    return re.sub(r"<[^>]+>", " ", dom)


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "zh"])
def test_pages_in_a_real_browser_typeset_formulas_offline_without_console_errors(site, language):
    import os
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed here (apt-get install chromium)")
    with_formulas = 0
    for page in sorted((site / language / "chapters").glob("*.html")):
        html_text = page.read_text(encoding="utf-8")
        # Over file://, with no network; the console goes to stderr.
        run = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
             "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        errors = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln and "Uncaught" in ln]
        assert not errors, (page.name, errors)
        spans = html_text.count('class="math')
        if not spans:
            continue
        # MathJax comes from the site itself, not from a CDN, and typesets every formula.
        sources = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', html_text)
        assert sources and all("://" not in s for s in sources), (page.name, sources)
        assert (page.parent / sources[0]).resolve().is_file()
        dom = run.stdout
        assert dom.count("<mjx-container") >= spans, (page.name, dom.count("<mjx-container"), spans)
        assert "\\(" not in _text(dom), f"{page.name}: raw TeX left on the page"
        with_formulas += 1
    assert with_formulas >= 5  # chapters 01-06 have formulas


@pytest.mark.slow
@pytest.mark.parametrize(("language", "word"), [("en", "profile"), ("zh", "配置")])
def test_chapter_pages_put_the_lesson_before_the_machinery(site, language, word):
    for page in sorted((site / language / "chapters").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        # papermill's injected cell is gone; the provenance is a banner under the title.
        assert "tag_injected-parameters" not in text, page.name
        banner = re.search(r'<p class="dlnotes-banner"[^>]*>([^<]+)</p>', text)
        assert banner and banner.group(1).startswith(f"{word} "), page.name
        assert "torch " in banner.group(1), page.name
        # The parameters cell folds behind a toggle (its input hidden, nothing removed).
        params = text.index('class="cell tag_parameters')
        assert "<details" in text[params : params + 400], page.name
        # So does the cell that resolves the profile, wherever a chapter puts it.
        call = text.index("check_injected")
        assert text.rfind("<details", 0, call) > text.rfind("</details>", 0, call), page.name
        # Inline scripts are not added twice (a second THEBE_JS_URL is a console error).
        assert text.count("const THEBE_JS_URL") <= 1, page.name
        # The English page offers its notebook; a Chinese page offers none (it would be English).
        assert ("_sources/chapters/" in text) == (language == "en"), page.name
        # One search box: the header's; the sidebar's second one is gone.
        sidebar = text[text.index('class="bd-sidebar-primary') : text.index("<main")]
        assert "search-button-field" not in sidebar, page.name


class _External(HTMLParser):
    """Collects the URLs a page would fetch from elsewhere: script, link, img and iframe."""

    ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        value = dict(attrs).get(self.ATTRS.get(tag, ""), "") or ""
        if re.match(r"(https?:)?//", value):
            self.urls.append(f"<{tag}> {value}")


@pytest.mark.slow
def test_no_page_fetches_anything_from_elsewhere(site):
    found = {}
    for page in sorted(site.rglob("*.html")):
        parser = _External()
        parser.feed(page.read_text(encoding="utf-8"))
        if parser.urls:
            found[str(page.relative_to(site))] = sorted(set(parser.urls))
    assert not found, found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("term", "chapter"),
    [("激活函数", "07_activations"), ("卷积网络", "02_cnn"), ("生成对抗网络", "04_gan"),
     ("注意力", "06_vit")],
)  # fmt: skip
def test_chinese_search_finds_a_chapter_by_its_title_term(site, term, chapter):
    text = (site / "zh" / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    found = set()
    for key in ("terms", "titleterms"):
        docs = index[key].get(term, [])
        found |= {index["docnames"][i] for i in ([docs] if isinstance(docs, int) else docs)}
    assert f"chapters/{chapter}" in found, (term, sorted(found))


def test_overview_scale_cell_compares_the_run_with_the_reports_scale():
    from dlnotes.runner.sphinxext import scale_cell

    report = {"EPOCHS": 400, "TRAIN": 60000, "WIDTH": 1.0}
    assert scale_cell(["EPOCHS", "TRAIN"], report, dict(report), "en") == ("the report's", False)
    text, differs = scale_cell(["EPOCHS", "TRAIN", "WIDTH"], report,
                               {"EPOCHS": 20, "TRAIN": 60000, "WIDTH": 0.25}, "zh_CN")  # fmt: skip
    assert differs and text == "EPOCHS 400 → 20; WIDTH 1 → 0.25"


@pytest.fixture(scope="module")
def browser_page():
    """A headless Chromium page driven by Playwright (the distribution's Chromium, no network)."""
    import os
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed here (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


@pytest.mark.slow
def test_the_language_link_keeps_the_section_in_view(site, browser_page):
    section = "resnet-18-ablations-on-small-imagenet-images"
    page = browser_page
    page.goto((site / "en" / "chapters" / "02_cnn.html").as_uri())
    page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
    link = page.locator("a.dlnotes-twin").first
    box = link.bounding_box()  # in the sticky header: in view without scrolling back up
    assert box and box["y"] + box["height"] > 0 and box["y"] < 100, box
    with page.expect_navigation():
        link.evaluate("a => a.click()")  # a reader's click: no scrolling first
    assert page.url.endswith(f"/zh/chapters/02_cnn.html#{section}"), page.url
    assert page.evaluate(f"document.getElementById('{section}').getBoundingClientRect().top") < 200


@pytest.mark.slow
def test_tables_have_one_style_and_pages_print_without_cut_code(site, browser_page):
    page = browser_page
    page.goto((site / "en" / "chapters" / "06_vit.html").as_uri())
    # Numbers in results tables are right-aligned, with padding.
    cell = page.locator(".cell_output table td.dlnotes-num").first
    assert cell.evaluate("c => getComputedStyle(c).textAlign") == "right"
    assert float(cell.evaluate("c => getComputedStyle(c).paddingLeft")[:-2]) >= 6
    page.emulate_media(media="print")
    # Printed, code wraps: no block is wider than the page, and the site's chrome is gone.
    overflow = page.evaluate(
        "Array.from(document.querySelectorAll('pre')).filter(p => p.offsetParent !== null)"
        ".map(p => p.scrollWidth - p.clientWidth)"
    )
    assert overflow and max(overflow) <= 1, max(overflow)
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.bd-sidebar-primary')).display")
        == "none"
    )
    page.emulate_media(media="screen")


_ALL_CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
_DRAWN = """box => [...box.querySelectorAll('svg image')].map(i => i.getAttribute('href')).join()
    + '|' + [...box.querySelectorAll('svg text')].map(t => t.textContent + '@'
      + t.getAttribute('transform')).join('/')
    + '|' + [...box.querySelectorAll('svg path')].map(p => [p.getAttribute('d'),
      p.getAttribute('opacity'), p.getAttribute('fill-opacity'), p.getAttribute('fill')].join()).join()"""


def _controls(box):
    """Every control of one explorer: (kind, locator). Sliders first: a choice can draw the same
    picture at a slider's starting value (chapter 04's directions at shift 0)."""
    found = []
    for kind, selector in (("range", "input[type=range]"), ("select", "select"),
                           ("radio", ".vega-bind-radio")):  # fmt: skip
        for i in range(box.locator(f".vega-bind {selector}").count()):
            found.append((kind, box.locator(f".vega-bind {selector}").nth(i)))
    return found


def _move(kind, control):
    if kind == "select":
        current = control.input_value()  # a value; the labels may be translated
        values = control.locator("option").evaluate_all("os => os.map(o => o.value)")
        control.select_option(value=[v for v in values if v != current][0])
    elif kind == "radio":
        control.locator("input:not(:checked)").first.check()
    else:  # a range: to the other end from where it stands
        low, value = control.get_attribute("min"), control.input_value()
        target = control.get_attribute("max") if value == low else low
        control.evaluate(
            "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", target
        )


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize(
    "chapter",
    _ALL_CHAPTERS,  # every chapter's page carries a kernel-free explorer
)  # fmt: skip
def test_explorers_answer_every_control_offline_in_both_languages(
    site, browser_page, chapter, language
):
    page, errors = browser_page, []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((site / language / "chapters" / f"{chapter}.html").as_uri())
    boxes = page.locator("div.dlnotes-explorer")
    assert boxes.count() >= 1, f"{chapter}: no explorer on the page"
    page.wait_for_function(
        "n => document.querySelectorAll('div.dlnotes-explorer[data-ready]').length === n",
        arg=boxes.count(), timeout=30_000,
    )  # fmt: skip
    for b in range(boxes.count()):
        box = boxes.nth(b)
        controls = _controls(box)
        assert controls, f"{chapter}: explorer {b} has no controls"
        # the whole chart is in view: nothing (a legend, the last axis label) behind a scroll bar
        widths = box.evaluate("e => [e.clientWidth, e.scrollWidth]")
        assert widths[1] <= widths[0], f"{chapter}: explorer {b} overflows its column: {widths}"
        names = box.locator(".vega-bind-name").all_inner_texts()
        if language == "zh":  # the controls speak the page's language (a symbol, λ or t, stays)
            assert all(re.search(r"[\u4e00-\u9fff]", n) or len(n.strip()) == 1 for n in names), (
                names
            )
        for kind, control in controls:
            before = box.evaluate(_DRAWN)
            _move(kind, control)
            page.wait_for_function(f"([box, before]) => ({_DRAWN})(box) !== before",
                                   arg=[box.element_handle(), before], timeout=5_000)  # fmt: skip
        if box.locator("button.dlnotes-play").count():  # ▶ steps the slider by itself
            before = box.evaluate(_DRAWN)
            box.locator("button.dlnotes-play").first.click()
            page.wait_for_function(f"([box, before]) => ({_DRAWN})(box) !== before",
                                   arg=[box.element_handle(), before], timeout=5_000)  # fmt: skip
    assert not errors, errors


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize(
    "chapter",
    _ALL_CHAPTERS,
)
def test_chapter_pages_weigh_under_3_mb_with_their_explorers(site, chapter, language):
    from dlnotes.runner.book import page_weight

    weight = page_weight(site / language / "chapters" / f"{chapter}.html")
    assert weight["total"] < 3_000_000, weight
