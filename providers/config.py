"""Providers as configuration: a YAML list applied all-or-nothing, with errors naming the entry and field."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from .backends import BACKENDS, backend_class, config_for
from .endpoints import endpoint_problem
from .identity import location_of, location_taken
from .models import Provider
from .signals import provider_changed

FIELDS = {"name", "kind", "region", "bucket", "endpoint", "default_storage_class", "credentials", "credentials_env",
          "options", "capacity_bytes", "enabled", "notes"}


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def _entry_values(entry: Any, where: str, problems: list[str]) -> dict | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping of fields")
        return None
    unknown = set(entry) - FIELDS
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("name", "kind", "bucket"):
        if not entry.get(required):
            problems.append(f"{where}.{required}: required")
    kind = entry.get("kind")
    if kind and kind not in BACKENDS:
        problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(sorted(BACKENDS))}")
        return None
    values = {k: v for k, v in entry.items() if k in FIELDS - {"credentials_env"}}
    creds = dict(entry.get("credentials") or {})
    for key, env_name in (entry.get("credentials_env") or {}).items():
        if env_name not in os.environ:
            problems.append(f"{where}.credentials_env.{key}: environment variable {env_name} is not set")
        else:
            creds[key] = os.environ[env_name]
    values["credentials"] = creds
    cls_name = entry.get("default_storage_class") or ""
    if kind and cls_name and cls_name not in backend_class(kind).storage_classes:
        problems.append(f"{where}.default_storage_class: {kind} has no class {cls_name!r}")
    return values


def _shared_locations(rows: list[Provider]) -> list[str]:
    """Two providers (in the file, or one in the file and one already saved) writing to one place."""
    problems, seen = [], {}
    names = {p.name for p in rows}
    for provider in rows:
        place = location_of(config_for(provider))
        if not place:
            continue
        if place in seen:
            problems.append(f"{provider.name} and {seen[place]} write to the same bucket/folder")
            continue
        seen[place] = provider.name
        twin = location_taken(config=config_for(provider), exclude_pk=provider.pk)
        if twin is not None and twin.name not in names:
            problems.append(f"{provider.name}: provider {twin.name} already writes to this bucket/folder")
    return problems


def providers_load(*, text: str) -> ApplyResult:
    """Create or update providers from YAML. Nothing is written unless every entry is valid."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"]) from None
    if isinstance(data, dict) and "providers" in data:
        data = data["providers"]
    if not isinstance(data, list):
        raise ConfigError(["expected a list of providers (or a mapping with a 'providers' list)"])
    problems: list[str] = []
    rows = []
    entries: dict[str, set[str]] = {}
    for i, entry in enumerate(data):
        where = f"providers[{i}]" + (f" ({entry.get('name')})" if isinstance(entry, dict) and entry.get("name") else "")
        values = _entry_values(entry, where, problems)
        if values is None:
            continue
        provider = Provider.objects.filter(name=values.get("name")).first() or Provider()
        moved = provider.pk and any(values.get(k, getattr(provider, k)) != getattr(provider, k)
                                    for k in ("endpoint", "bucket", "kind"))
        if moved and not values.get("credentials") and provider.credentials:
            problems.append(f"{where}: the endpoint, bucket or kind changed: name the credentials again (stored "
                            "ones are never sent to another place)")
        problem = endpoint_problem(values.get("endpoint", ""))
        if problem:
            problems.append(f"{where}.endpoint: {problem}")
        for k, v in values.items():
            if k == "credentials" and not v and provider.pk:
                continue  # keep stored credentials when the file names none
            setattr(provider, k, v)
        try:
            provider.full_clean(validate_unique=False)
        except ValidationError as exc:
            problems += [f"{where}.{f}: {' '.join(m)}" for f, m in exc.message_dict.items()]
        rows.append(provider)
        entries[provider.name] = set(values) - {"name"}
    names = [p.name for p in rows]
    problems += [f"name {n!r} appears more than once" for n in sorted({n for n in names if names.count(n) > 1})]
    problems += _shared_locations(rows)
    if problems:
        raise ConfigError(problems)
    result = ApplyResult()
    with transaction.atomic():
        for provider in rows:
            created = not provider.pk
            (result.created if created else result.updated).append(provider.name)
            provider.save()
            provider_changed.send(sender=Provider, provider=provider, by="load_providers", created=created,
                                  fields=sorted(entries[provider.name]))
    return result
