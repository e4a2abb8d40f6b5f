"""Bucket lifecycle configuration for the S3 backend (``s3.py``) and Wasabi, which shares its code.

S3 keeps one lifecycle configuration per bucket: a put replaces all of it. So ``lifecycle_put`` reads the
configuration, keeps every rule whose ID is not ours exactly as read (the soft-delete window of ``keep_versions``
buckets, an admin's own rules), replaces ours, and writes only when that changes anything. A filter by size
(``ObjectSizeGreaterThan``) keeps objects a class would bill at a minimum size where they are.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .base import PermanentError
from .base_lifecycle import LifecycleRule, rules_check

NO_CONFIGURATION = "NoSuchLifecycleConfiguration"


def s3_rule_document(rule: LifecycleRule) -> dict[str, Any]:
    """The rule as S3's ``Rules`` entry (objects of at least ``min_size`` bytes: greater than min_size - 1)."""
    flt: dict[str, Any] = {"Prefix": rule.prefix}
    if rule.min_size:
        flt = {"And": {"Prefix": rule.prefix, "ObjectSizeGreaterThan": rule.min_size - 1}}
    return {"ID": rule.id, "Status": "Enabled", "Filter": flt,
            "Transitions": [{"Days": days, "StorageClass": cls} for days, cls in rule.transitions]}


def s3_rule_read(doc: dict[str, Any]) -> LifecycleRule:
    """A rule of the bucket as read; one that is not ours keeps its document in ``raw``."""
    flt = doc.get("Filter") or {}
    both = flt.get("And") or {}
    prefix = flt.get("Prefix", both.get("Prefix", doc.get("Prefix", "")))
    above = both.get("ObjectSizeGreaterThan", flt.get("ObjectSizeGreaterThan"))
    transitions = tuple((int(t["Days"]), t["StorageClass"]) for t in doc.get("Transitions") or [] if "Days" in t)
    return LifecycleRule(id=doc.get("ID", ""), prefix=prefix or "", transitions=transitions,
                         min_size=0 if above is None else int(above) + 1, raw=doc)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return s3_rule_read(a) == s3_rule_read(b) and a.get("Status") == b.get("Status") == "Enabled"


class S3Lifecycle:
    """Mixed into S3Backend: it provides ``client``, ``config``, ``storage_classes`` and ``_call``."""

    #: The provider moves objects between classes by age itself (declared capability of the contract).
    lifecycle_rules = True

    def _lifecycle_documents(self) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            try:
                return self.client.get_bucket_lifecycle_configuration(Bucket=self.config.bucket).get("Rules", [])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == NO_CONFIGURATION:
                    return []
                raise

        return self._call("read the lifecycle configuration", read)

    def lifecycle_get(self) -> list[LifecycleRule]:
        """Every rule of the bucket: ours parsed, others' with their document in ``raw``."""
        return [s3_rule_read(doc) for doc in self._lifecycle_documents()]

    def lifecycle_put(self, rules: list[LifecycleRule]) -> bool:
        """Make ours exactly ``rules`` (none: remove ours), keep every other rule; True when the bucket changed."""
        try:
            ours = [s3_rule_document(r) for r in rules_check(rules, self.storage_classes)]
        except ValueError as exc:
            raise PermanentError(f"{self.config.name}: {exc}") from None
        existing = self._lifecycle_documents()
        theirs = [doc for doc in existing if not s3_rule_read(doc).ours]
        had = [doc for doc in existing if s3_rule_read(doc).ours]
        if len(had) == len(ours) and all(_same(a, b) for a, b in zip(had, ours, strict=True)):
            return False
        wanted = theirs + ours
        if wanted:
            self._call("write the lifecycle configuration", lambda: self.client.put_bucket_lifecycle_configuration(
                Bucket=self.config.bucket, LifecycleConfiguration={"Rules": wanted}))
        else:
            self._call("remove the lifecycle configuration",
                       lambda: self.client.delete_bucket_lifecycle(Bucket=self.config.bucket))
        return True
