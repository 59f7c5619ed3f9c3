"""IMDB reviews: raw texts and labels (for any tokenizer), and a word vocabulary built on train."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from .store import cache_dir, dataset_root, load_derived

__all__ = ["TextData", "load_imdb", "Vocab", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Return lower-cased word tokens, with the reviews' ``<br />`` tags dropped."""
    return _TOKEN.findall(text.replace("<br />", " ").lower())


@dataclass
class TextData:
    """Reviews and labels per split (1 = positive); ``dataset`` names the variant read."""

    texts: dict[str, list[str]]
    labels: dict[str, torch.Tensor]
    dataset: str


def load_imdb(
    name: str = "imdb",
    *,
    cache: str | Path | None = None,
    mirror: str | Path | None = None,
    progress: bool = True,
) -> TextData:
    """Return the IMDB train and test reviews (12,500 positive and 12,500 negative each).

    The 50,000 small files are read once and cached as one file beside the archive.
    """

    def build():
        root = dataset_root(name, cache=cache, mirror=mirror, progress=progress)
        data = {"texts": {}, "labels": {}}
        for split in ("train", "test"):
            texts, labels = [], []
            for label, polarity in ((0, "neg"), (1, "pos")):
                files = sorted((root / split / polarity).glob("*.txt"), key=lambda p: p.name)
                texts += [p.read_text(encoding="utf-8") for p in files]
                labels += [label] * len(files)
            data["texts"][split], data["labels"][split] = texts, torch.tensor(labels)
        return data

    data = load_derived(cache_dir(cache) / name / "reviews.pt", name, build)
    return TextData(data["texts"], data["labels"], name)


class Vocab:
    """A word vocabulary: index 0 pads, 1 stands for words outside it."""

    PAD, UNK = 0, 1

    def __init__(self, words: list[str]):
        self.itos = ["<pad>", "<unk>", *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(
        cls, texts: list[str] | list[list[str]], size: int = 32000, min_freq: int = 1
    ) -> Vocab:
        """Return the ``size`` most frequent words of ``texts`` (ties broken alphabetically).

        ``texts`` are reviews, or reviews already split by ``tokenize``.
        """
        counts = Counter(tok for text in texts for tok in _tokens(text))
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls(ranked[: max(size - 2, 0)])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(
        self, texts: list[str] | list[list[str]], max_len: int, *, keep: str = "head"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (ids, lengths): ids (N, max_len), at most ``max_len`` words of each text.

        ``keep="head"`` keeps the first words and pads at the end; ``keep="tail"`` keeps the last
        words and pads at the start, as Keras' ``pad_sequences`` does by default.
        """
        if keep not in ("head", "tail"):
            raise ValueError(f"keep must be 'head' or 'tail', not {keep!r}")
        ids = torch.full((len(texts), max_len), self.PAD, dtype=torch.long)
        lengths = torch.zeros(len(texts), dtype=torch.long)
        for i, text in enumerate(texts):
            words = _tokens(text)
            words = words[:max_len] if keep == "head" else words[max(len(words) - max_len, 0) :]
            row = torch.tensor([self.stoi.get(t, self.UNK) for t in words], dtype=torch.long)
            if keep == "head":
                ids[i, : len(row)] = row
            else:
                ids[i, max_len - len(row) :] = row
            lengths[i] = len(row)
        return ids, lengths


def _tokens(text: str | list[str]) -> list[str]:
    return text if isinstance(text, list) else tokenize(text)
