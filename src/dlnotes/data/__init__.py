"""Datasets: a registry with checksums, fetching from cache, mirror or official URL, and loaders.

from dlnotes.data import load_images, load_imdb
mnist = load_images("mnist", val=0.1, device=device)   # (X, y) tensors per split
"""

from .images import NORMALIZATIONS, ImageData, load_images, normalize
from .registry import REGISTRY, DataFile, Dataset, get, names
from .standins import standin_digits, standin_images, standin_pets, standin_reviews
from .store import DataError, cache_dir, dataset_root, fetch, fetch_file, mirror_base, verify_cache
from .text import TextData, Vocab, load_imdb, tokenize

__all__ = [
    "NORMALIZATIONS", "ImageData", "load_images", "normalize",
    "REGISTRY", "DataFile", "Dataset", "get", "names",
    "standin_digits", "standin_images", "standin_pets", "standin_reviews",
    "DataError", "cache_dir", "dataset_root", "fetch", "fetch_file", "mirror_base", "verify_cache",
    "TextData", "Vocab", "load_imdb", "tokenize",
]  # fmt: skip
