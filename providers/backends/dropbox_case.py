"""Dropbox names ignore case: which folders of a path may be spelt otherwise on Dropbox (pure)."""

from __future__ import annotations


def folders_to_confirm(path: str, display: str | None, root: str) -> list[tuple[str, str]]:
    """(folder path, our spelling of its name) for each folder below ``root`` whose case differs in ``display``.

    ``path_display`` promises only the last component's case, so each such folder is to be asked for its own
    name before we call it another spelling of ours."""
    skip, ours = root.count("/") + 1, path.split("/")[:-1]
    shown = (display or path).split("/")[:-1]
    return [("/".join(ours[: i + 1]), mine) for i, (mine, theirs) in enumerate(zip(ours, shown, strict=False))
            if i >= skip and mine != theirs]
