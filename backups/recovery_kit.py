"""The recovery kit: what a fresh install needs to reach every copy again, and nothing else.

A YAML file whose ``providers`` list is the schema ``load_providers`` reads (without credentials), and a ``sealed``
block: the providers' credentials and the master encryption key, encrypted with AES-256-GCM under a key derived
from a passphrase the operator types (scrypt). The public part is the cipher's associated data, so a kit whose
endpoints or buckets were edited does not open: the credentials only ever go back to where they came from. The kit
is written to a local file (mode 0600), never to a provider.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.conf import settings
from django.utils import timezone

from providers.config import ConfigError, providers_load
from providers.crypto import CredentialsError
from providers.models import Provider

from . import encryption
from .audit import audit_record
from .models import AuditEvent, Wedding

FORMAT = "wedbackup-recovery-kit/1"
PUBLIC_FIELDS = ("name", "kind", "region", "bucket", "endpoint", "default_storage_class", "options", "capacity_bytes",
                 "enabled", "notes")
SCRYPT = {"n": 2**17, "r": 8, "p": 1}  # about 128 MiB and half a second per try: slow for a guesser
MAX_SCRYPT_N = 2**20
MIN_PASSPHRASE = 12
HEADER = ("# WedBackup recovery kit. Keep it off the servers it protects, with its passphrase kept apart.\n"
          "# Load it on a fresh install: manage.py recovery_kit --load FILE\n")


class KitError(Exception):
    """The kit cannot be made or loaded; nothing was written."""


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _aad(public: dict) -> bytes:
    return json.dumps(public, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _write_private(path: Path, text: str) -> None:
    """Atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _on_a_provider(path: Path) -> str:
    """The watched-folder provider the path is inside, or "": the kit must not sit beside what it unlocks."""
    for provider in Provider.objects.filter(kind=Provider.Kind.WATCHED_FOLDER):
        if path.resolve().is_relative_to(Path(provider.bucket).resolve()):
            return provider.name
    return ""


def kit_create(*, out: Path, passphrase: str, by: str = "cli") -> dict:
    """Write the kit to ``out``; audited as "recovery_kit.create" (what the console's reminder looks for)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise KitError(f"the passphrase must be at least {MIN_PASSPHRASE} characters")
    inside = _on_a_provider(Path(out))
    if inside:
        raise KitError(f"{out} is inside provider {inside}'s folder: keep the kit off the providers")
    providers = list(Provider.objects.order_by("name"))
    try:
        credentials = {p.name: p.credentials for p in providers}
    except CredentialsError as exc:
        raise KitError(str(exc)) from None
    public = {"format": FORMAT, "created_at": timezone.now().isoformat(), "master_key_id": encryption.master_key_id(),
              "providers": [{f: getattr(p, f) for f in PUBLIC_FIELDS} for p in providers]}
    salt, nonce = os.urandom(16), os.urandom(12)
    secret = json.dumps({"credentials": credentials, "master_key": settings.ENCRYPTION_MASTER_KEY}).encode()
    sealed = AESGCM(_derive(passphrase, salt, **SCRYPT)).encrypt(nonce, secret, _aad(public))
    kit = {**public, "sealed": {"kdf": "scrypt", **SCRYPT, "salt": base64.b64encode(salt).decode(),
                                "cipher": "AES-256-GCM", "nonce": base64.b64encode(nonce).decode(),
                                "ciphertext": base64.b64encode(sealed).decode()}}
    _write_private(Path(out), HEADER + yaml.safe_dump(kit, sort_keys=False, allow_unicode=True))
    names = [p.name for p in providers]
    audit_record(by=by, action="recovery_kit.create", target="recovery-kit",
                 details={"providers": names, "master_key_id": public["master_key_id"]})
    return {"out": str(out), "providers": names, "master_key_id": public["master_key_id"]}


def _opened(text: str, passphrase: str) -> tuple[dict, dict]:
    try:
        data = yaml.safe_load(text)
        public = {k: data[k] for k in ("format", "created_at", "master_key_id", "providers")}
        sealed = data["sealed"]
        n, r, p = int(sealed["n"]), int(sealed["r"]), int(sealed["p"])
        salt, nonce, blob = (base64.b64decode(sealed[k]) for k in ("salt", "nonce", "ciphertext"))
    except (yaml.YAMLError, KeyError, TypeError, ValueError):
        raise KitError("not a WedBackup recovery kit (or a damaged one)") from None
    if public["format"] != FORMAT or sealed.get("kdf") != "scrypt" or not 2 <= n <= MAX_SCRYPT_N:
        raise KitError(f"unsupported kit: format {public['format']!r}")
    try:
        secret = json.loads(AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, blob, _aad(public)))
    except (InvalidTag, ValueError):
        raise KitError("wrong passphrase, or the kit was altered: nothing was loaded") from None
    if encryption.master_key_id(secret["master_key"]) != public["master_key_id"]:
        raise KitError("the kit's master key does not match its fingerprint: nothing was loaded")
    return public, secret


def master_key_file_default() -> Path | None:
    """Where a local install reads its master key (``var/encryption_key``); None when the environment sets it."""
    return None if os.environ.get("WEDBACKUP_ENCRYPTION_KEY") else Path(settings.VAR_DIR) / "encryption_key"


def kit_load(*, path: Path, passphrase: str, key_file: Path | None, by: str = "cli") -> dict:
    """Open the kit, create or update its providers (all or nothing, through ``load_providers``' rules) and put
    the master key in ``key_file``. KitError, with nothing written, on a wrong passphrase or a bad kit."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise KitError(f"cannot read {path}: {exc.strerror}") from None
    public, secret = _opened(text, passphrase)
    current = settings.ENCRYPTION_MASTER_KEY
    needs_key = current != secret["master_key"]
    if needs_key and key_file is None:
        raise KitError("WEDBACKUP_ENCRYPTION_KEY is set to another key: give a key file to write the kit's key to, "
                       "then set the variable from it")
    if needs_key and Wedding.objects.exclude(wrapped_data_key="").exists():
        raise KitError("this install already holds encrypted weddings under another master key: refusing to "
                       "replace it (load the kit on a fresh install)")
    entries = [{**entry, "credentials": secret["credentials"].get(entry["name"], {})}
               for entry in public["providers"]]
    try:
        result = providers_load(text=yaml.safe_dump({"providers": entries}))
    except ConfigError as exc:
        raise KitError("nothing applied:\n  " + "\n  ".join(exc.problems)) from None
    if needs_key:
        _write_private(Path(key_file), secret["master_key"])
    audit_record(by=by, action="recovery_kit.load", target="recovery-kit",
                 details={"made": public["created_at"], "providers": [e["name"] for e in entries],
                          "master_key_id": public["master_key_id"]})
    return {"created": result.created, "updated": result.updated, "master_key_id": public["master_key_id"],
            "master_key_file": str(key_file) if needs_key else "", "kit_made": public["created_at"]}


def kit_reminder() -> str:
    """Why staff should make a new kit ("" when the last one still covers every provider and the key)."""
    names = set(Provider.objects.values_list("name", flat=True))
    if not names:
        return ""
    made = AuditEvent.objects.filter(action="recovery_kit.create").order_by("-at").first()
    if made is None:
        return "No recovery kit has been made yet"
    if made.details.get("master_key_id") != encryption.master_key_id():
        return "The master encryption key changed since the last recovery kit"
    changed = AuditEvent.objects.filter(action__in=("provider.create", "provider.change"), at__gt=made.at).exists()
    if changed or set(made.details.get("providers") or []) != names:
        return "Providers changed since the last recovery kit"
    return ""
