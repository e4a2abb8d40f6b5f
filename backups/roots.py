"""The server folders the console may import from and restore into (``WEDBACKUP_IMPORT_ROOTS`` and
``WEDBACKUP_RESTORE_ROOTS``): anything else on the server, the app's own keys included, is out of reach."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def root_problem(path: str | Path, roots: list[str], *, what: str, setting: str) -> str:
    """Why ``path`` is outside every configured root, or "" when it is inside one (symlinks resolved)."""
    target = Path(path).resolve()
    for root in roots:
        if target.is_relative_to(Path(root).resolve()):
            return ""
    allowed = ", ".join(str(r) for r in roots) or "none configured"
    return f"{what} only inside {allowed} (set {setting} to allow other folders)"


def import_root_problem(path: str | Path) -> str:
    return root_problem(path, settings.WEDBACKUP_IMPORT_ROOTS, what="imports are allowed",
                        setting="WEDBACKUP_IMPORT_ROOTS")


def restore_root_problem(path: str | Path) -> str:
    return root_problem(path, settings.WEDBACKUP_RESTORE_ROOTS, what="restores into a server folder are allowed",
                        setting="WEDBACKUP_RESTORE_ROOTS")
