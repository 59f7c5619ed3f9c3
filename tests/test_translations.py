"""The Chinese catalogs follow the glossary (docs/glossary.md): one rendering per term."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = sorted((ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES").rglob("*.po"))


def _glossary() -> list[tuple[str, str, str]]:
    rows = []
    for line in (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2] in ("heading", "term"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def _messages():
    for path in CATALOGS:
        with open(path, "rb") as f:
            for message in read_po(f):
                if message.id and isinstance(message.id, str) and message.string:
                    yield path.name, message.id, message.string


def test_the_glossary_is_read():
    kinds = {kind for _, _, kind in _glossary()}
    assert len(_glossary()) >= 20 and kinds == {"heading", "term"}
    assert CATALOGS


@pytest.mark.parametrize(("english", "chinese", "kind"), _glossary())
def test_catalogs_follow_the_glossary(english, chinese, kind):
    wrong = []
    for name, msgid, msgstr in _messages():
        if kind == "heading":
            if msgid == english and msgstr != chinese:
                wrong.append((name, msgstr))
            continue
        prose = re.sub(r"`[^`]*`", "", msgid)  # code spans and roles are not prose
        if re.search(rf"\b{re.escape(english)}", prose, re.IGNORECASE) and chinese not in msgstr:
            wrong.append((name, msgid[:70], msgstr[:70]))
    assert not wrong, f"{english!r} should be {chinese!r}: {wrong[:3]}"


def test_the_search_dictionary_knows_the_glossarys_chinese_terms():
    words = {line.split()[0] for line in (ROOT / "book" / "zh_terms.txt").read_text(
        encoding="utf-8").splitlines() if line.strip()}  # fmt: skip
    missing = [zh for _, zh, kind in _glossary() if kind == "term" and " " not in zh
               and zh not in words]  # fmt: skip
    assert not missing, f"add to book/zh_terms.txt: {missing}"


def test_table_translations_keep_every_number():
    # A table message's {0}, {1} … are the run's numbers: a translation must place each of them.
    wrong = []
    for name, msgid, msgstr in _messages():
        if "{glue" in msgid:
            continue
        holes = sorted(re.findall(r"\{\d+\}", msgid))
        if holes and sorted(re.findall(r"\{\d+\}", msgstr)) != holes:
            wrong.append((name, msgid, msgstr))
    assert not wrong, wrong[:3]
