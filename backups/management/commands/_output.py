"""Shared by the commands: print a result as JSON or as lines a person reads."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backups.models import Wedding


def emit(command: BaseCommand, data: dict[str, Any], *, as_json: bool, lines: list[str]) -> None:
    if as_json:
        command.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        for line in lines:
            command.stdout.write(line)


def wedding_or_error(wedding_id: int):
    """The wedding, or a CommandError a person understands."""
    try:
        return Wedding.objects.get(pk=wedding_id)
    except Wedding.DoesNotExist:
        raise CommandError(f"no wedding with id {wedding_id}") from None
