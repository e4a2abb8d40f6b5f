"""The client CPU one small file costs: the SDK's request alone, our backend's verified ``put``, and rclone.

    .venv/bin/python bench/per_file.py [--files 500] [--size-kb 70] [--repeat 3]

Issue 18 item 4 asks for the engine's client CPU at 0.6 x rclone's. On a wedding of many small files the
engine's CPU is per request, not per byte, so this measures that per-request floor on its own, one thread,
one file at a time (no other thread competing for the GIL), against the same local servers as
``backup.py``: aws_s3 on SeaweedFS and azure_blob on Azurite.

- **SDK call**: the very request our backend sends for a small file (boto3 ``put_object`` with
  ``ChecksumSHA256``; azure ``upload_blob`` with ``Content-MD5``), made on the backend's own client with the
  bytes already in memory: what the official SDK costs, with nothing of ours around it.
- **backend.put**: ``Backend.put`` from an open file, as the engine calls it (open, read, sha256 checked,
  the provider's answer checked, ``ObjectInfo``): the SDK call plus our wrapper.
- **rclone copy**: ``rclone copy --checksum`` of the same folder into an empty bucket (CPU from wait4).

CPU is the calling thread's (``time.thread_time``) for the first two, so the servers (same machine) are
not counted; rclone's is its process's user + system time. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))
from _servers import local_servers, print_machine, table, write_random_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RCLONE = Path(os.environ.get("WEDBACKUP_BENCH_RCLONE") or ROOT / ".venv" / "bin" / "rclone")
KINDS = ("aws_s3", "azure_blob")


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wedbackup.settings")
    import django

    django.setup()


def backend_for_kind(servers, kind: str, bucket: str):
    from providers.backends import backend_from_config
    from providers.backends.base import BackendConfig

    config = servers.s3_bucket(bucket) if kind == "aws_s3" else servers.azure_container(bucket)
    return backend_from_config(BackendConfig(name=f"bench-{kind}", kind=kind, **config))


def sdk_put(backend, kind: str, key: str, data: bytes, sha256_hex: str) -> None:
    """The request ``backend.put`` sends for a small file, and nothing else."""
    if kind == "aws_s3":
        sha = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        resp = backend.client.put_object(Bucket=backend.config.bucket, Key=key, Body=data, ChecksumSHA256=sha,
                                         ContentType="application/octet-stream", StorageClass="STANDARD",
                                         Metadata={})
        assert resp["ChecksumSHA256"] == sha, resp
        return
    from azure.storage.blob import ContentSettings, StandardBlobTier

    md5 = hashlib.md5(data, usedforsecurity=False).digest()  # our backend hashes it too (HashingReader)
    resp = backend._container().get_blob_client(key).upload_blob(
        data, overwrite=True, standard_blob_tier=StandardBlobTier.HOT,
        content_settings=ContentSettings(content_type="application/octet-stream", content_md5=bytearray(md5)),
        headers={"Content-MD5": base64.b64encode(md5).decode()})
    assert bytes(resp["content_md5"]) == md5, resp


def measure(files: list[tuple[Path, str]], put) -> float:
    """Thread CPU seconds per file, over every file."""
    started = time.thread_time()
    for i, (path, sha) in enumerate(files):
        put(i, path, sha)
    return (time.thread_time() - started) / len(files)


def rclone_cpu(servers, kind: str, folder: Path, bucket: str, workdir: Path, files: int) -> float:
    from _servers import ACCESS_KEY, SECRET_KEY

    from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    env = {**os.environ, "RCLONE_CONFIG": str(workdir / "rclone.conf")}
    if kind == "aws_s3":
        servers.s3_bucket(bucket)
        env.update({"RCLONE_CONFIG_WB_TYPE": "s3", "RCLONE_CONFIG_WB_PROVIDER": "SeaweedFS",
                    "RCLONE_CONFIG_WB_ACCESS_KEY_ID": ACCESS_KEY, "RCLONE_CONFIG_WB_SECRET_ACCESS_KEY": SECRET_KEY,
                    "RCLONE_CONFIG_WB_ENDPOINT": str(servers.seaweedfs().extra["endpoint"]),
                    "RCLONE_CONFIG_WB_REGION": "us-east-1"})
    else:
        servers.azure_container(bucket)
        env.update({"RCLONE_CONFIG_WB_TYPE": "azureblob", "RCLONE_CONFIG_WB_ACCOUNT": DEV_ACCOUNT_NAME,
                    "RCLONE_CONFIG_WB_KEY": DEV_ACCOUNT_KEY,
                    "RCLONE_CONFIG_WB_ENDPOINT": str(servers.azurite().extra["endpoint"])})
    proc = subprocess.Popen([str(RCLONE), "copy", str(folder), f"wb:{bucket}/f", "--checksum", "-q"], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rclone copy to {kind} failed")
    return (usage.ru_utime + usage.ru_stime) / files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size-kb", type=float, default=70.0, help="each file's size (70: the real-size "
                        "wedding's photos at --scale 0.02, where backup.py measures the engine per file)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not RCLONE.exists():
        raise SystemExit(f"{RCLONE} is missing: pip install -r bench/requirements.txt")
    django_setup()
    print_machine()
    print(f"# {args.files} files of {args.size_kb:g} KB, one thread, one file at a time; {args.repeat} runs",
          flush=True)
    runs: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="wb-bench-perfile-") as tmp, local_servers(Path(tmp)) as servers:
        workdir = Path(tmp)
        folder = workdir / "src"
        folder.mkdir()
        files = [(p, write_random_file(p, int(args.size_kb * 1024)))
                 for p in (folder / f"IMG_{i:05d}.jpg" for i in range(args.files))]
        for run in range(args.repeat):
            for kind in KINDS:
                backend = backend_for_kind(servers, kind, f"pf-{run}-{kind.replace('_', '-')}")
                backend.put("warm-up", open(files[0][0], "rb"), files[0][0].stat().st_size,  # noqa: SIM115
                            sha256=files[0][1])
                contents = {p: p.read_bytes() for p, _ in files}  # the SDK row starts from bytes in memory

                def sdk(i, path, sha, backend=backend, kind=kind, contents=contents):
                    sdk_put(backend, kind, f"sdk/{i:05d}", contents[path], sha)

                def ours(i, path, sha, backend=backend):
                    with open(path, "rb") as fh:
                        info = backend.put(f"ours/{i:05d}", fh, path.stat().st_size, sha256=sha)
                    assert info.size == path.stat().st_size

                runs.setdefault((kind, "SDK call"), []).append(measure(files, sdk))
                runs.setdefault((kind, "backend.put"), []).append(measure(files, ours))
                runs.setdefault((kind, "rclone copy"), []).append(
                    rclone_cpu(servers, kind, folder, f"pf-{run}-rc-{kind.replace('_', '-')}", workdir, len(files)))
                print(f"# run {run + 1} {kind}: " + ", ".join(f"{what} {values[-1] * 1000:.2f} ms"
                      for (k, what), values in runs.items() if k == kind), flush=True)
    rows = []
    for kind in KINDS:
        sdk_ms = statistics.median(runs[(kind, "SDK call")]) * 1000
        for what in ("SDK call", "backend.put", "rclone copy"):
            values = [v * 1000 for v in runs[(kind, what)]]
            med = statistics.median(values)
            rows.append([kind, what, f"{med:.2f}", f"{min(values):.2f}-{max(values):.2f}", f"{med / sdk_ms:.2f}"])
    print()
    print(table(rows, ["backend", "path", "CPU ms per file (median)", "range", "x SDK call"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
