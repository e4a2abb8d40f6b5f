"""Bucket lifecycle for the GCS backend (``gcs.py``), through google-cloud-storage's bucket lifecycle API.

GCS rules carry no id and one action each, so one of our rules becomes one ``SetStorageClass`` rule per
transition, marked as ours by a second ``matchesPrefix`` entry, ``.wedbackup-rule/<id>/``, under which no object
is ever written (``matchesPrefix`` is an OR of its entries: the marker matches nothing, the real prefix does the
work). ``matchesStorageClass`` lists the warmer classes only, so a rule never warms an object moved colder by
hand. GCS lifecycle conditions cannot filter by size: a rule with ``min_size`` is refused.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .base import PermanentError
from .base_lifecycle import LifecycleRule, rules_check

MARKER = ".wedbackup-rule/"
TIMEOUT = (5, 30)


def gcs_rule_documents(rule: LifecycleRule, storage_classes: tuple[str, ...]) -> list[dict[str, Any]]:
    """One GCS lifecycle rule per transition (their JSON as the JSON API takes it)."""
    if rule.min_size:
        raise ValueError(f"lifecycle rule {rule.id!r}: GCS lifecycle conditions cannot filter by object size")
    return [{"action": {"type": "SetStorageClass", "storageClass": cls},
             "condition": {"age": days, "matchesPrefix": [rule.prefix, f"{MARKER}{rule.id}/"],
                           "matchesStorageClass": list(storage_classes[:storage_classes.index(cls)])}}
            for days, cls in rule.transitions]


def _marker_id(doc: dict[str, Any]) -> str | None:
    for prefix in (doc.get("condition") or {}).get("matchesPrefix") or []:
        if prefix.startswith(MARKER) and prefix.endswith("/"):
            return prefix[len(MARKER):-1]
    return None


def gcs_rules_read(docs: list[dict[str, Any]]) -> list[LifecycleRule]:
    """Ours regrouped by their marker; every other rule as it is, in ``raw`` (id: its position)."""
    ours: dict[str, list[dict[str, Any]]] = defaultdict(list)
    out: list[LifecycleRule] = []
    for i, doc in enumerate(docs):
        rule_id = _marker_id(doc)
        if rule_id is not None:
            ours[rule_id].append(doc)
            continue
        cond = doc.get("condition") or {}
        prefixes = cond.get("matchesPrefix") or [""]
        action = doc.get("action") or {}
        moves = ((int(cond["age"]), action["storageClass"]),) if (
            action.get("type") == "SetStorageClass" and "age" in cond) else ()
        out.append(LifecycleRule(id=f"gcs-rule-{i}", prefix=prefixes[0], transitions=moves, raw=doc))
    for rule_id, group in ours.items():
        prefix = next(p for p in group[0]["condition"]["matchesPrefix"] if not p.startswith(MARKER))
        moves = tuple(sorted((int(d["condition"]["age"]), d["action"]["storageClass"]) for d in group))
        out.append(LifecycleRule(id=rule_id, prefix=prefix, transitions=moves, raw=None))
    return out


class GCSLifecycle:
    """Mixed into GCSBackend: it provides ``_bucket``, ``_call``, ``config`` and ``storage_classes``."""

    lifecycle_rules = True

    def _lifecycle_documents(self) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            bucket = self._bucket()
            bucket.reload(retry=None, timeout=TIMEOUT)
            return [dict(r) for r in bucket.lifecycle_rules]

        return self._call(read)

    def lifecycle_get(self) -> list[LifecycleRule]:
        return gcs_rules_read(self._lifecycle_documents())

    def lifecycle_put(self, rules: list[LifecycleRule]) -> bool:
        """Make ours exactly ``rules``, keep every other rule as read; True when the bucket changed."""
        try:
            ours = [d for r in rules_check(rules, self.storage_classes)
                    for d in gcs_rule_documents(r, self.storage_classes)]
        except ValueError as exc:
            raise PermanentError(f"{self.config.name}: {exc}") from None
        docs = self._lifecycle_documents()
        theirs = [d for d in docs if _marker_id(d) is None]
        if [d for d in docs if _marker_id(d) is not None] == ours:
            return False

        def write() -> None:
            bucket = self._bucket()
            bucket.lifecycle_rules = theirs + ours
            bucket.patch(retry=None, timeout=TIMEOUT)

        self._call(write)
        return True
