"""WedBackup's own database, backed up: a dump (``pg_dump`` custom format for PostgreSQL, SQLite's backup API for
the local default) encrypted like a wedding's files (AES-256-GCM under a fresh data key wrapped by the master key),
stored on two providers under ``wedbackup-system/<generation>/`` with a META.json written last (a generation
without one is incomplete), the newest GENERATIONS kept. ``system_db_restore`` loads the newest generation that
decrypts and matches its sha256. When no dump survives, ``rebuild`` rebuilds the catalogue from the manifests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from django.db import connections
from django.utils import timezone

from providers.backends import backend_for
from providers.backends.base import IntegrityError, ObjectInfo, ProviderError
from providers.crypto import CredentialsError
from providers.models import Provider

from . import encryption
from .audit import audit_record
from .deletion import DeleteRefused, system_object_delete
from .layout import SYSTEM_PREFIX
from .models import Wedding

FORMAT = "wedbackup-system-db/1"
GENERATIONS = 7
COPIES = 2
DUMP_NAME, META_NAME = "database.dump.enc", "META.json"
TIMEOUT = 3600


class SystemDbError(Exception):
    """The dump or the restore could not be done; the message says why (never a secret)."""


def _pg_env(db: dict) -> dict:
    """libpq's variables: the password never appears on a command line."""
    values = {"PGHOST": db.get("HOST"), "PGPORT": db.get("PORT"), "PGUSER": db.get("USER"),
              "PGPASSWORD": db.get("PASSWORD"), "PGDATABASE": db.get("NAME")}
    return {**os.environ, **{k: str(v) for k, v in values.items() if v}}


def _run(args: list[str], db: dict) -> None:
    try:
        done = subprocess.run(args, env=_pg_env(db), capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SystemDbError(f"{args[0]} could not run: {exc}") from None
    if done.returncode:
        raise SystemDbError(f"{args[0]} failed: {(done.stderr.strip().splitlines() or ['no message'])[-1]}")


def database_dump(*, db: dict, vendor: str, to: Path) -> None:
    if vendor == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={to}"], db)
    elif vendor == "sqlite":
        with sqlite3.connect(db["NAME"]) as src, sqlite3.connect(to) as dst:
            src.backup(dst)
    else:
        raise SystemDbError(f"no dump for a {vendor} database")


def database_load(*, db: dict, vendor: str, dump: Path) -> None:
    """Replace the database's content with the dump's, in one transaction (PostgreSQL) or one backup (SQLite)."""
    if vendor == "postgresql":
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
              f"--dbname={db['NAME']}", str(dump)], db)
    elif vendor == "sqlite":
        with sqlite3.connect(dump) as src, sqlite3.connect(db["NAME"]) as dst:
            src.backup(dst)
    else:
        raise SystemDbError(f"no restore for a {vendor} database")


def _targets() -> list[Provider]:
    """COPIES providers taking work, of different kinds where there are."""
    usable = [p for p in Provider.objects.filter(enabled=True).order_by("name") if p.accepts_work]
    chosen: list[Provider] = []
    for provider in usable:
        if len(chosen) < COPIES and provider.kind not in {c.kind for c in chosen}:
            chosen.append(provider)
    return chosen + [p for p in usable if p not in chosen][: COPIES - len(chosen)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(encryption.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _prune(provider: Provider, keep: int) -> list[str]:
    backend = backend_for(provider)
    objects: dict[str, list[ObjectInfo]] = {}
    for info in backend.list(SYSTEM_PREFIX):
        objects.setdefault(info.key[len(SYSTEM_PREFIX):].split("/", 1)[0], []).append(info)
    complete = sorted((g for g, infos in objects.items() if any(i.key.endswith(META_NAME) for i in infos)),
                      reverse=True)
    if len(complete) <= keep:
        return []
    newest = next(i for i in objects[complete[0]] if i.key.endswith(DUMP_NAME))
    deleted = []
    for generation in sorted(g for g in objects if g < complete[keep - 1]):
        for info in objects[generation]:
            try:
                if system_object_delete(provider=provider, key=info.key, newer=newest,
                                        reason=f"older than the {keep} newest database dumps"):
                    deleted.append(f"{provider.name}: {info.key}")
            except (ProviderError, DeleteRefused):
                continue  # left for the next run
    return deleted


def system_db_backup(*, generations: int = GENERATIONS) -> dict:
    """Dump, encrypt and store the database on two providers, then drop generations beyond ``generations``."""
    connection = connections["default"]
    generation = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
    stored, errors, pruned = [], [], []
    with tempfile.TemporaryDirectory(prefix="wedbackup-systemdb-") as work:
        dump = Path(work) / "database.dump"
        database_dump(db=connection.settings_dict, vendor=connection.vendor, to=dump)
        size, sha = dump.stat().st_size, _sha256(dump)
        data_key, wrapped = encryption.data_key_new()
        with open(dump, "rb") as fh:
            stored_sha = encryption.stored_sha256(fh, data_key, sha)
        meta = {"format": FORMAT, "generation": generation, "created_at": timezone.now().isoformat(),
                "engine": connection.vendor, "size": size, "sha256": sha, "stored_size": size + encryption.OVERHEAD,
                "stored_sha256": stored_sha, "wrapped_data_key": wrapped, "master_key_id": encryption.master_key_id(),
                "algorithm": encryption.ALGORITHM}
        body = json.dumps(meta, indent=2).encode()
        for provider in _targets():
            backend = backend_for(provider)
            try:
                with open(dump, "rb") as fh:
                    backend.put(f"{SYSTEM_PREFIX}{generation}/{DUMP_NAME}",
                                encryption.EncryptingReader(fh, data_key, sha), meta["stored_size"], sha256=stored_sha,
                                content_type="application/octet-stream")
                backend.put(f"{SYSTEM_PREFIX}{generation}/{META_NAME}", io.BytesIO(body), len(body),
                            sha256=hashlib.sha256(body).hexdigest(), content_type="application/json")
            except ProviderError as exc:
                errors.append(f"{provider.name}: {exc}")
                continue
            stored.append(provider.name)
            pruned += _prune(provider, generations)
    result = {"generation": generation, "engine": connection.vendor, "bytes": size, "stored_on": stored,
              "errors": errors, "pruned": pruned}
    audit_record(by="system", action="system_db.backup", target=f"generation:{generation}",
                 details={k: v for k, v in result.items() if k != "pruned"} | {"pruned": len(pruned)})
    if not stored:
        raise SystemDbError("the database dump was stored nowhere: " + ("; ".join(errors) or "no provider takes work"))
    return result


def system_db_generations() -> list[tuple[str, Provider, dict]]:
    """Every complete generation on every enabled provider, newest first: (generation, provider, its META)."""
    found = []
    for provider in Provider.objects.filter(enabled=True).order_by("name"):
        backend = backend_for(provider)
        try:
            keys = [i.key for i in backend.list(SYSTEM_PREFIX) if i.key.endswith(f"/{META_NAME}")]
        except ProviderError:
            continue
        for key in keys:
            try:
                with backend.open(key) as fh:
                    meta = json.loads(fh.read(1024 * 1024))
            except (ProviderError, ValueError):
                continue  # this generation is unreadable here; others may not be
            if isinstance(meta, dict) and meta.get("format") == FORMAT and \
                    f"{SYSTEM_PREFIX}{meta.get('generation')}/{META_NAME}" == key:
                found.append((meta["generation"], provider, meta))
    return sorted(sorted(found, key=lambda g: g[1].name), key=lambda g: g[0], reverse=True)


def _fetch(provider: Provider, meta: dict, to: Path) -> None:
    """The generation's dump, decrypted into ``to``; IntegrityError unless it is exactly what was dumped."""
    data_key = encryption.data_key_unwrap(meta["wrapped_data_key"])
    digest = hashlib.sha256()
    with backend_for(provider).open(f"{SYSTEM_PREFIX}{meta['generation']}/{DUMP_NAME}") as src, open(to, "wb") as out:
        for chunk in encryption.decrypt_chunks(src, data_key):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != meta["sha256"]:
        raise IntegrityError("sha256 of the decrypted dump differs from its META")


def system_db_restore(*, force: bool = False) -> dict:
    """Load the newest generation that verifies into this install's (empty) database. The providers' credentials
    loaded from the recovery kit are kept: those in the dump were sealed with the old server's credentials key."""
    connection = connections["default"]
    if Wedding.objects.exists() and not force:
        raise SystemDbError("this database already holds weddings: restore onto a fresh install (or --force)")
    try:
        credentials = {p.name: p.credentials for p in Provider.objects.all()}
    except CredentialsError as exc:
        raise SystemDbError(str(exc)) from None
    tried = []
    with tempfile.TemporaryDirectory(prefix="wedbackup-systemdb-") as work:
        for generation, provider, meta in system_db_generations():
            if meta.get("engine") != connection.vendor:
                tried.append(f"{generation} on {provider.name}: a {meta.get('engine')} dump")
                continue
            dump = Path(work) / f"{generation}-{provider.name}.dump"
            try:
                _fetch(provider, meta, dump)
            except (ProviderError, KeyError, ValueError) as exc:
                tried.append(f"{generation} on {provider.name}: {exc}")
                continue
            connection.close()
            database_load(db=connection.settings_dict, vendor=connection.vendor, dump=dump)
            for name, values in credentials.items():
                Provider.objects.filter(name=name).update(credentials=values)
            unreadable = sorted(set(Provider.objects.values_list("name", flat=True)) - set(credentials))
            audit_record(by="cli", action="system_db.restore", target=f"generation:{generation}",
                         details={"provider": provider.name, "tried": tried})
            return {"generation": generation, "provider": provider.name, "tried": tried,
                    "credentials_to_type_again": unreadable}
    raise SystemDbError("no database dump verifies: " + ("; ".join(tried) or "none found under " + SYSTEM_PREFIX))
