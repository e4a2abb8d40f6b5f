"""plotly.js for the console's charts, taken from the installed plotly package (the console works offline): a
staticfiles finder that exposes only ``plotly/plotly.min.js`` (the package's data folder holds ~10 MB more)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PREFIX = "plotly"
NAME = "plotly.min.js"


def _package_data() -> Path:
    spec = importlib.util.find_spec("plotly")
    return Path(spec.origin).parent / "package_data"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(_package_data()))
        self.storage.prefix = PREFIX

    def check(self, **kwargs) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        match = str(_package_data() / NAME) if path == f"{PREFIX}/{NAME}" else None
        if find_all:
            return [match] if match else []
        return match or []

    def list(self, ignore_patterns):
        yield NAME, self.storage
