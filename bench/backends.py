"""Backend throughput and memory: 200 x 1 MB and 2 x 200 MB through each backend's verified ``put``.

    .venv/bin/python bench/backends.py [--scale 0.1] [--only aws_s3 --only memory] [--part-size-mb 8]

Each backend runs in its own child process, so its peak RSS (VmHWM, reset before each phase) is its own.
Uploads are sequential, one file at a time, exactly as the engine calls ``put`` for one replica. Servers:
aws_s3 on SeaweedFS, azure_blob on Azurite, gcs on gcp-storage-emulator (a pure-Python server that tops
out around 16 MB/s: its row measures the emulator, not our backend), watched_folder on a temp dir (fsync
bound), b2 on b2sdk's in-process simulator (in-memory, so each object is deleted right after its upload,
outside the timing, to keep the RSS figure about the backend). Then the memory check: a child process
whose only job is a 1 GB S3 multipart upload streamed from a file; its whole-life peak RSS must stay
under 150 MB. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))
from _servers import MB, local_servers, peak_rss_kb, print_machine, reset_peak_rss, run_child, table  # noqa: E402

KINDS = ("aws_s3", "azure_blob", "gcs", "watched_folder", "b2")
MEMORY_LIMIT_MB = 150
NOTES = {
    "gcs": "gcp-storage-emulator is pure Python (~16 MB/s): this row is the emulator's speed",
    "watched_folder": "fsync per file on the temp dir's disk",
    "b2": "b2sdk RawSimulator in this process (no HTTP); objects deleted after each put, untimed",
}


# -- child: upload a list of files through one backend -------------------------------------------------
def _b2_backend(config: dict):
    from b2sdk.v2 import B2Api, B2HttpApiConfig, InMemoryAccountInfo, InMemoryCache, RawSimulator

    from providers.backends.b2 import B2Backend
    from providers.backends.base import BackendConfig

    sim = RawSimulator()

    def api_factory() -> B2Api:
        return B2Api(InMemoryAccountInfo(), InMemoryCache(), api_config=B2HttpApiConfig(_raw_api_class=lambda _h: sim))

    key_id, key = sim.create_account()
    api = api_factory()
    api.authorize_account("production", key_id, key)
    api.create_bucket(config["bucket"], "allPrivate")
    config = {**config, "credentials": {"application_key_id": key_id, "application_key": key}}
    return B2Backend(BackendConfig(**config), api_factory=api_factory)


def child(spec: dict) -> None:
    """Upload each phase's files in order; print one JSON line per phase."""
    from providers.backends import backend_from_config
    from providers.backends.base import BackendConfig

    config = spec["config"]
    backend = _b2_backend(config) if config["kind"] == "b2" else backend_from_config(BackendConfig(**config))
    for phase in spec["phases"]:
        reset_peak_rss()
        seconds, total = 0.0, 0
        for i, (path, size, sha256) in enumerate(phase["files"]):
            key = f"bench/{phase['name']}/{i:04d}-{Path(path).name}"
            with open(path, "rb") as fh:
                started = time.perf_counter()
                info = backend.put(key, fh, size, sha256=sha256, content_type="application/octet-stream")
                seconds += time.perf_counter() - started
            assert info.size == size, (info, size)
            total += size
            if config["kind"] == "b2":
                backend.delete(key)
        print(json.dumps({"phase": phase["name"], "files": len(phase["files"]), "bytes": total,
                          "seconds": seconds, "peak_rss_kb": peak_rss_kb()}), flush=True)


# -- parent --------------------------------------------------------------------------------------------
def make_files(folder: Path, count: int, size: int) -> list[tuple[str, int, str]]:
    from _servers import write_random_file

    return [(str(p), size, write_random_file(p, size))
            for p in (folder / f"f{i:04d}.bin" for i in range(count))]


def backend_config(servers, kind: str, workdir: Path, part_size: int, bucket: str = "bench-s3") -> dict:
    base = {"name": f"bench-{kind}", "kind": kind, "part_size": part_size}
    if kind == "aws_s3":
        return {**base, **servers.s3_bucket(bucket)}
    if kind == "azure_blob":
        return {**base, **servers.azure_container("bench-azure")}
    if kind == "gcs":
        return {**base, **servers.gcs_bucket("bench-gcs")}
    if kind == "watched_folder":
        return {**base, "bucket": str(workdir / "watched"), "options": {"create": True}}
    return {**base, "bucket": "bench-b2"}


def run_backend(config: dict, phases: list[dict]) -> tuple[list[dict], int]:
    code, out, rss = run_child([sys.executable, __file__, "--child"], stdin=json.dumps(
        {"config": config, "phases": phases}))
    if code != 0:
        raise RuntimeError(f"{config['kind']} child exited with {code}; output:\n{out}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file size (e.g. 0.1 for a quick run)")
    parser.add_argument("--only", action="append", choices=[*KINDS, "memory"],
                        help="run only these (repeatable); 'memory' is the 1 GB RSS check")
    parser.add_argument("--part-size-mb", type=float, default=8.0, help="multipart part size (engine default 8)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.load(sys.stdin))
        return 0

    only = args.only or [*KINDS, "memory"]
    small, large, huge = max(1, int(MB * args.scale)), max(1, int(200 * MB * args.scale)), int(1024 * MB * args.scale)
    part_size = int(args.part_size_mb * MB)
    print_machine()
    print(f"# scale {args.scale}: 200 x {small / MB:.2f} MB, 2 x {large / MB:.1f} MB; part size {part_size / MB:g} MB")
    rows, failures = [], 0
    with tempfile.TemporaryDirectory(prefix="wb-bench-backends-") as tmp, local_servers(Path(tmp)) as servers:
        workdir = Path(tmp)
        t = time.perf_counter()
        phases = [{"name": f"200 x {small / MB:.3g} MB", "files": make_files(workdir / "src" / "small", 200, small)},
                  {"name": f"2 x {large / MB:.3g} MB", "files": make_files(workdir / "src" / "large", 2, large)}]
        print(f"# test files written in {time.perf_counter() - t:.1f}s", flush=True)
        for kind in (k for k in KINDS if k in only):
            config = backend_config(servers, kind, workdir, part_size)
            results, _ = run_backend(config, phases)
            for r in results:
                mb = r["bytes"] / MB
                rows.append([kind, r["phase"], f"{mb:.0f}", f"{r['seconds']:.2f}", f"{mb / r['seconds']:.1f}",
                             f"{r['peak_rss_kb'] / 1024:.0f}"])
                print(f"# {kind:14} {r['phase']:11} {mb / r['seconds']:7.1f} MB/s", flush=True)
        if rows:
            print()
            print(table(rows, ["backend", "files", "MB", "seconds", "MB/s", "peak RSS MB"]))
            for kind in (k for k in KINDS if k in only and k in NOTES):
                print(f"  {kind}: {NOTES[kind]}")
        if "memory" in only:
            failures += memory_check(servers, workdir, huge, part_size)
    return 1 if failures else 0


def memory_check(servers, workdir: Path, size: int, part_size: int) -> int:
    """1 GB to S3 multipart in a child that does nothing else; its whole-life peak RSS from wait4."""
    print(f"\n# memory: one {size / MB:.0f} MB file streamed to aws_s3 (multipart, {part_size / MB:g} MB parts)")
    files = make_files(workdir / "src" / "huge", 1, size)
    config = backend_config(servers, "aws_s3", workdir, part_size, bucket="bench-s3-memory")
    results, rss_kb = run_backend(config, [{"name": "huge", "files": files}])
    r = results[0]
    ok = rss_kb / 1024 < MEMORY_LIMIT_MB
    print(f"aws_s3: {r['bytes'] / MB:.0f} MB in {r['seconds']:.1f}s ({r['bytes'] / MB / r['seconds']:.1f} MB/s); "
          f"peak RSS of the child process over its whole life {rss_kb / 1024:.0f} MB (VmHWM during the upload "
          f"{r['peak_rss_kb'] / 1024:.0f} MB): {'PASS' if ok else 'FAIL'} (limit {MEMORY_LIMIT_MB} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
