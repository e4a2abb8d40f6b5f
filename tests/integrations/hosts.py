"""Independent "machines" for multi-host tests: each host is its own session of ``manage.py rqworker`` processes
with its own working directory, TMPDIR and var dir, sharing only PostgreSQL, Redis and the cloud servers, as
separate machines would. ``kill()`` is a power cut: SIGKILL to every process of the session (rq's work horses
move to a process group of their own, so killing the worker's group alone would leave them running)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import connection
from rq.job import Job

from providers.breaker import DEFAULT_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def shared_env(**overrides: str) -> dict[str, str]:
    """What every host is configured with: the test's database and Redis, and the deployment's keys."""
    db = connection.settings_dict
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "wedbackup.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.RQ_QUEUES["default"]["URL"], "SECRET_KEY": settings.SECRET_KEY,
        "WEDBACKUP_CREDENTIALS_KEY": ",".join(settings.CREDENTIALS_KEYS),
        "WEDBACKUP_ENCRYPTION_KEY": settings.ENCRYPTION_MASTER_KEY,
        "WEDBACKUP_PART_SIZE": str(settings.WEDBACKUP_PART_SIZE), **overrides,
    }


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: state, ppid, pgrp, session, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int | None:
    try:
        return int(_stat(pid)[1])
    except (OSError, IndexError):
        return None


def session_pids(sid: int) -> list[int]:
    """Live processes of a session (from /proc, Linux); zombies left out."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = _stat(int(entry.name))
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def wait_until(check: Callable[[], object], *, timeout: float, what: str | Callable[[], str],
               every: float = 0.1) -> object:
    """Poll ``check`` until it returns something true (returned); ``what`` (or what it returns) names it."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what() if callable(what) else what}")
        time.sleep(every)
    return result


class Host:
    """One machine: ``workers`` rqworker processes in one session, in its own directories."""

    def __init__(self, name: str, tmp_path: Path, env: dict[str, str]):
        self.name = name
        self.dir = tmp_path / name
        (self.dir / "tmp").mkdir(parents=True)
        self.env = {**env, "TMPDIR": str(self.dir / "tmp"), "WEDBACKUP_VAR_DIR": str(self.dir / "var")}
        self.log = self.dir / "workers.log"
        self.leader: subprocess.Popen | None = None
        self.worker_names: list[str] = []

    def start(self, queues: list[str], *, workers: int = 1) -> Host:
        """A shell as the session leader (like a machine's init), each worker its child."""
        suffix = uuid.uuid4().hex[:6]  # a killed worker's name stays registered in Redis for worker_ttl
        self.worker_names = [f"{self.name}-{suffix}-{i}" for i in range(workers)]
        manage = [sys.executable, str(ROOT / "manage.py"), "rqworker", *queues]
        script = " ".join(f"{subprocess.list2cmdline([*manage, '--name', n])} &" for n in self.worker_names) + " wait"
        with open(self.log, "ab") as log:
            self.leader = subprocess.Popen(["sh", "-c", script], cwd=self.dir, env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def registered(self) -> bool:
        """Every worker of the host has registered with Redis (it is ready to take jobs)."""
        conn = django_rq.get_connection("default")
        return all(conn.exists(f"rq:worker:{n}") for n in self.worker_names)

    def runs(self, job: Job) -> bool:
        return (job.worker_name or "") in self.worker_names

    def kill(self) -> None:
        """kill -9 of every process of the host, work horses included, until none is left."""
        assert self.leader is not None
        sid = self.leader.pid
        deadline = time.monotonic() + 10
        while pids := session_pids(sid):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise AssertionError(f"host {self.name}: processes {pids} survive SIGKILL")
            time.sleep(0.02)
        self.leader.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def forget_worker_state() -> None:
    """Breakers (the subprocesses keep them under the default prefix) and upload slots a killed host held:
    provider ids restart at 1 in every test, so one test's leftovers would throttle the next."""
    conn = django_rq.get_connection("default")
    for key in [*conn.scan_iter(f"{DEFAULT_PREFIX}:*"), *conn.scan_iter("wedbackup:slots:provider:*")]:
        conn.delete(key)
