"""Rebuild the catalogue (weddings, assets, replicas) from the manifests on the providers, when WedBackup's own
database is gone. Every reachable provider's manifests are read and checked (their own sha256); per wedding the
newest manifest wins and disagreements are reported; a replica is verified only after a HEAD whose size and checksums
match what a manifest recorded (the same check verify uses). Copies on a provider that could not be read are recorded
unverified; running the rebuild again once it is back completes them. Idempotent and resumable: a wedding is written
in one transaction, and copies already verified are not checked again.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import Backend, ProviderError
from providers.models import Provider

from .audit import audit_record
from .integrity import replica_check
from .layout import INDEX_PREFIX, MANIFEST_NAME, ROOT, index_slug, slug_manifest_key
from .manifest import ManifestError, manifest_parse
from .models import Asset, AssetKind, Replica, Wedding
from .snapshots import wedding_refresh

MAX_MANIFEST_BYTES = 256 * 1024 * 1024
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
UNVERIFIED = Replica.REBUILT_UNCHECKED
HEAD_THREADS = 8  # HEADs in flight per wedding: a rebuild of a whole fleet is bound by round trips


@dataclass
class RebuildReport:
    weddings: list[str] = field(default_factory=list)
    assets: int = 0
    replicas_verified: int = 0
    replicas_unverified: list[str] = field(default_factory=list)  # "provider: key: why"
    skipped: list[str] = field(default_factory=list)  # manifests (or entries) that could not be used, and why
    disagreements: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # "provider: why"

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Found:
    provider: Provider
    manifest: dict

    @property
    def when(self) -> dt.datetime:
        try:
            stamp = dt.datetime.fromisoformat(str(self.manifest.get("generated_at")))
        except ValueError:
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _manifest_keys(backend: Backend) -> list[str]:
    """From the fleet index; a provider written before the index existed is listed in full instead."""
    slugs = sorted({slug for info in backend.list(INDEX_PREFIX) if (slug := index_slug(info.key))})
    if slugs:
        return [f"{ROOT}/{slug}/{MANIFEST_NAME}" for slug in slugs]
    return sorted(info.key for info in backend.list(f"{ROOT}/")
                  if info.key.count("/") == 2 and info.key.endswith(f"/{MANIFEST_NAME}"))


def _read(backend: Backend, key: str) -> bytes:
    with backend.open(key) as fh:
        raw = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes")
    return raw


def manifests_collect(*, providers: list[Provider], report: RebuildReport) -> dict[str, list[Found]]:
    """slug -> the usable manifests found for it, newest first; what could not be used is in the report."""
    found: dict[str, list[Found]] = {}
    for provider in providers:
        backend = backend_for(provider)
        try:
            keys = _manifest_keys(backend)
        except ProviderError as exc:
            report.unreachable.append(f"{provider.name}: {exc}")
            continue
        for key in keys:
            try:
                manifest = manifest_parse(_read(backend, key))
                slug = str(manifest["wedding"].get("slug") or "")
                if not SLUG.match(slug) or slug_manifest_key(slug) != key:
                    raise ManifestError(f"names wedding {slug!r}, which is not the folder it is stored in")
            except (ManifestError, ProviderError) as exc:
                report.skipped.append(f"{provider.name}: {key}: {exc}")
                continue
            found.setdefault(slug, []).append(Found(provider, manifest))
    for manifests in found.values():
        manifests.sort(key=lambda f: f.when, reverse=True)
    return found


def _entry_problem(slug: str, entry: object) -> str:
    if not isinstance(entry, dict):
        return "not a mapping"
    path, kind = entry.get("path"), entry.get("kind")
    if not isinstance(path, str) or not path or kind not in AssetKind.values:
        return "path or kind missing"
    if not isinstance(entry.get("size"), int) or entry["size"] < 0 or not SHA256.match(str(entry.get("sha256"))):
        return "size or sha256 invalid"
    if entry.get("key") != f"{ROOT}/{slug}/{kind}/{path}":
        return "key is not the plain layout's key for its path"
    return ""


def _files(slug: str, manifests: list[Found], report: RebuildReport) -> dict[str, tuple[dict, str]]:
    """path -> (entry, provider name): every file any manifest lists, the newest manifest's entry winning."""
    files: dict[str, tuple[dict, str]] = {}
    for found in reversed(manifests):  # oldest first: newer entries replace older ones
        for entry in found.manifest["files"]:
            problem = _entry_problem(slug, entry)
            if problem:
                report.skipped.append(f"{found.provider.name}: {slug}: a file entry: {problem}")
                continue
            previous = files.get(entry["path"])
            if previous and previous[0]["sha256"] != entry["sha256"]:
                report.disagreements.append(
                    f"{slug}: {entry['path']}: {found.provider.name} (newer) and {previous[1]} hold different "
                    "versions; the newer is catalogued")
            files[entry["path"]] = (entry, found.provider.name)
    return files


def _wedding_values(slug: str, manifests: list[Found], report: RebuildReport) -> dict:
    newest = manifests[0]
    w = newest.manifest["wedding"]
    for other in manifests[1:]:
        differ = sorted(k for k in ("couple", "date", "country", "city", "plan", "legal_hold", "sharing_allowed")
                        if other.manifest["wedding"].get(k) != w.get(k))
        if differ:
            report.disagreements.append(f"{slug}: {other.provider.name} differs from {newest.provider.name} (newest) "
                                        f"on {', '.join(differ)}; the newest is catalogued")
    values = {"couple": str(w.get("couple") or slug), "date": dt.date.fromisoformat(str(w.get("date"))),
              "country": str(w.get("country") or "")[:2], "city": str(w.get("city") or ""),
              "residency_zone": str(w.get("residency_zone") or w.get("residency") or ""),
              "plan": str(w.get("plan") or "standard"), "requires_ml_analysis": bool(w.get("requires_ml_analysis")),
              "sharing_allowed": bool(w.get("sharing_allowed")), "legal_hold": bool(w.get("legal_hold")),
              "watch_source": False}
    wrapped = next((f.manifest["encryption"].get("wrapped_data_key") for f in manifests
                    if isinstance(f.manifest.get("encryption"), dict)), "")
    if wrapped:
        values["wrapped_data_key"] = wrapped
    return values


def _assets_write(wedding: Wedding, files: dict[str, tuple[dict, str]]) -> dict[str, Asset]:
    existing = {a.relative_path: a for a in wedding.assets.all()}
    new = []
    for path, (entry, _) in files.items():
        captured = entry.get("captured_at")
        values = {"kind": entry["kind"], "size": entry["size"], "sha256": entry["sha256"],
                  "content_type": entry.get("content_type") or "application/octet-stream",
                  "width": entry.get("width"), "height": entry.get("height"),
                  "captured_at": dt.datetime.fromisoformat(captured) if captured else None}
        asset = existing.get(path)
        if asset is None:
            new.append(Asset(wedding=wedding, relative_path=path, **values))
        elif any(getattr(asset, k) != v for k, v in values.items()):
            Asset.objects.filter(pk=asset.pk).update(**values)
            existing[path] = Asset.objects.get(pk=asset.pk)
    if new:
        Asset.objects.bulk_create(new, batch_size=1000)
        existing = {a.relative_path: a for a in wedding.assets.all()}
    return existing


def _copies(slug: str, manifests: list[Found], files: dict[str, tuple[dict, str]]) -> dict[tuple[str, str], dict]:
    """(provider name, path) -> what is known of that copy: its own manifest entry, or (for a copy named only in
    another provider's "copies") the same stored bytes' size and checksums as reported elsewhere."""
    copies: dict[tuple[str, str], dict] = {}
    merged: dict[str, dict] = {}
    for found in manifests:
        for entry in found.manifest["files"]:
            if _entry_problem(slug, entry) or entry["path"] not in files:
                continue
            copies[(found.provider.name, entry["path"])] = {**entry, "own": True}
            if entry["sha256"] == files[entry["path"]][0]["sha256"]:
                merged.setdefault(entry["path"], {}).update(entry.get("checksums") or {})
    for path, (entry, _) in files.items():
        checksums = {**merged.get(path, {})}
        if not entry.get("encrypted"):
            checksums.setdefault("sha256", entry["sha256"])
        for name in entry.get("copies") or []:
            copies.setdefault((str(name), path), {**entry, "checksums": checksums, "version_id": "",
                                                  "storage_class": "", "retain_until": None, "own": False})
    return copies


class _Backends:
    """One backend per provider for a wedding's checks, built once, shared by the HEAD threads."""

    def __init__(self):
        self._built: dict[int, Backend] = {}
        self._lock = threading.Lock()

    def get(self, provider: Provider) -> Backend:
        with self._lock:
            if provider.pk not in self._built:
                self._built[provider.pk] = backend_for(provider)
            return self._built[provider.pk]


def _replica_check(asset: Asset, provider: Provider, copy: dict, backends: _Backends,
                   unreachable: set[str]) -> tuple[Replica, str]:
    """An unsaved replica as recorded, and why it is not verified ("" when a HEAD confirmed it). No database
    access here: it runs in the HEAD threads."""
    retain = copy.get("retain_until")
    replica = Replica(
        asset=asset, provider=provider, object_key=copy["key"], storage_class=copy.get("storage_class") or "",
        region=provider.region, size=copy.get("stored_size", copy["size"]), checksums=copy.get("checksums") or {},
        sha256=copy["sha256"], version_id=copy.get("version_id") or "", encrypted=bool(copy.get("encrypted")),
        retain_until=dt.datetime.fromisoformat(retain) if retain else None,
        reason="rebuilt from its provider's manifest" if copy["own"] else "rebuilt: named in another manifest")
    if copy["sha256"] != asset.sha256:
        return replica, "holds another version of the file than the one catalogued"
    if provider.name in unreachable or not provider.enabled:
        return replica, f"{UNVERIFIED}: {provider.name} was unreachable; run rebuild_catalog again when it is back"
    try:
        backend = backends.get(provider)
        problem = replica_check(replica, backend, deep=False)
        if not problem and not _checksum_in_common(replica, backend):
            # Not "unchecked" (a later verify would accept it on size again): damage until a repair rewrites it.
            problem = "no checksum the provider reports is among the recorded ones: size alone proves nothing"
    except ProviderError as exc:
        return replica, f"{UNVERIFIED}: {exc}"
    return replica, problem


def _checksum_in_common(replica: Replica, backend: Backend) -> bool:
    """Verified means a provider checksum matched: a HEAD whose checksums share no algorithm with the record (a copy
    named only in another provider's manifest, say) confirms the size, not the bytes."""
    info = backend.head(replica.object_key)
    return bool(info and set(info.checksums) & set(replica.checksums))


def wedding_rebuild(*, slug: str, manifests: list[Found], providers: dict[str, Provider], unreachable: set[str],
                    report: RebuildReport) -> Wedding:
    files = _files(slug, manifests, report)
    values = _wedding_values(slug, manifests, report)
    with transaction.atomic():
        wedding = Wedding.objects.select_for_update().filter(slug=slug).first()
        if wedding is None:
            wedding = Wedding.objects.create(slug=slug, **values)
        else:  # a rerun: what staff changed since (watching, a hold) is theirs; a hold is never lowered
            values.pop("watch_source")
            values["legal_hold"] = values["legal_hold"] or wedding.legal_hold
            Wedding.objects.filter(pk=wedding.pk).update(**values)
            wedding.refresh_from_db()
        assets = _assets_write(wedding, files)
    expected = manifests[0].manifest["wedding"].get("assets")
    if isinstance(expected, int) and expected > len(files):
        report.disagreements.append(f"{slug}: the catalogue held {expected} files; the manifests name {len(files)}")
    held = {(r.provider.name, r.asset.relative_path): r for r in
            Replica.objects.filter(asset__wedding=wedding).select_related("provider", "asset")}
    todo: list[tuple[Asset, Provider, dict]] = []
    unknown: set[str] = set()
    for (name, path), copy in _copies(slug, manifests, files).items():
        provider, current = providers.get(name), held.get((name, path))
        if provider is None:
            unknown.add(name)
            continue
        if current and current.status == Replica.Status.VERIFIED and current.sha256 == assets[path].sha256:
            report.replicas_verified += 1
            continue
        todo.append((assets[path], provider, copy))
    backends = _Backends()
    with ThreadPoolExecutor(max_workers=HEAD_THREADS, thread_name_prefix="rebuild-head") as pool:
        rows = list(pool.map(lambda t: _replica_check(*t, backends, unreachable), todo))
    report.skipped += [f"{slug}: copies on {name} are not recorded: no provider of that name is configured"
                       for name in sorted(unknown)]
    _replicas_write(rows, held, report)
    report.assets += len(files)
    wedding_refresh(wedding)
    return wedding


def _replicas_write(rows: list[tuple[Replica, str]], held: dict[tuple[str, str], Replica],
                    report: RebuildReport) -> None:
    """New rows in bulk (a fresh database), rows a previous run left unverified updated in place."""
    now, new = timezone.now(), []
    names = ("object_key", "storage_class", "region", "size", "checksums", "sha256", "version_id", "encrypted",
             "retain_until", "reason", "status", "last_error", "verified_at")
    with transaction.atomic():
        for replica, problem in rows:
            replica.status = Replica.Status.FAILED if problem else Replica.Status.VERIFIED
            replica.last_error, replica.verified_at = problem[:4000], None if problem else now
            current = held.get((replica.provider.name, replica.asset.relative_path))
            if current is None:
                new.append(replica)
            else:
                Replica.objects.filter(pk=current.pk).update(**{f: getattr(replica, f) for f in names}, updated=now)
            if problem:
                report.replicas_unverified.append(f"{replica.provider.name}: {replica.object_key}: {problem}")
            else:
                report.replicas_verified += 1
        Replica.objects.bulk_create(new, batch_size=1000)


def catalog_rebuild(*, only: list[str] | None = None,
                    progress: Callable[[str, int, int], None] | None = None) -> RebuildReport:
    """Rebuild every wedding found in the manifests of the enabled providers (or of those named in ``only``);
    ``progress`` hears (slug, n, total) after each wedding."""
    report = RebuildReport()
    providers = {p.name: p for p in Provider.objects.all()}
    unknown = sorted(set(only or []) - set(providers))
    if unknown:
        raise ValueError(f"no provider named {', '.join(unknown)} (load the recovery kit or providers first)")
    readable = [p for name, p in sorted(providers.items()) if p.enabled and (not only or name in only)]
    found = manifests_collect(providers=readable, report=report)
    unreachable = {line.split(":", 1)[0] for line in report.unreachable}
    for n, slug in enumerate(sorted(found), 1):
        try:
            wedding_rebuild(slug=slug, manifests=found[slug], providers=providers, unreachable=unreachable,
                            report=report)
        except (ValueError, TypeError, KeyError) as exc:  # one wedding's bad fields never stop the others
            report.skipped.append(f"{slug}: not rebuilt: {exc}")
        else:
            report.weddings.append(slug)
        if progress is not None:
            progress(slug, n, len(found))
    if not only and not report.unreachable:  # the whole catalogue reconciled with every provider's manifests
        audit_record(by="cli", action="catalog.rebuild", target="catalogue",
                     details={"weddings": len(report.weddings), "skipped": len(report.skipped)})
    return report
