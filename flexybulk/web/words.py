"""The library's command-line phrases in the page's own words: :mod:`flexybulk.wording`, used by the pages."""

from ..wording import CONTROLS, PHRASES, page_words  # noqa: F401 (the pages' names for them)
