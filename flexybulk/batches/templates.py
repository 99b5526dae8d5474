"""The template use case: an empty recipient sheet with dropdowns from the live catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..client import FlexyboxClient
from ..errors import ConfigError
from ..target import Target


@dataclass
class TemplateWritten:
    """A template written: its path and the dropdowns' names (empty when the catalogue lists no active ones)."""

    path: Path
    types: list[str]
    departments: list[str]
    target: str


def make_template(out: Path | str, target: Target, *, lang: str = "da", force: bool = False) -> TemplateWritten:
    """Write an empty recipient sheet with dropdowns from the live catalogue (see :mod:`flexybulk.template`).

    Raises:
        ConfigError: ``out`` is not ``.xlsx``, or exists and ``force`` is false.
        ApiError: the catalogue could not be fetched.
        InputFileError: the file cannot be written.
    """
    from ..template import dropdown_names, write_template

    path = Path(out)
    if path.suffix.lower() != ".xlsx":
        raise ConfigError(f"{path.name}: the template is an Excel workbook; give it a name ending in .xlsx.")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists already. Choose another name, or add --force to overwrite it.")
    with FlexyboxClient(target.settings) as client:
        catalogue = client.get_catalogue()
    write_template(path, catalogue, lang=lang.lower())
    return TemplateWritten(path, dropdown_names(catalogue.types), dropdown_names(catalogue.departments), target.name)
