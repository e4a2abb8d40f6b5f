"""/healthz and /readyz: no login, JSON, no secrets; readiness follows Redis (a real one, stopped and started)
and the workers' heartbeats."""

import shutil
import socket
import subprocess
import time

import django_rq
import pytest
import redis
from django.test import Client
from rq import Worker

from wedbackup import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_worker(rq_queues):
    """A worker registered in Redis with a fresh heartbeat, as `manage.py rqworker` leaves one."""
    worker = Worker(["default"], connection=django_rq.get_connection("default"))
    worker.register_birth()
    worker.heartbeat()
    yield worker
    worker.register_death()


def test_liveness_needs_no_login_and_says_ok():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_when_the_database_redis_and_a_worker_answer(live_worker):
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "workers": "ok"}


def test_not_ready_without_a_worker_heartbeat(rq_queues, settings):
    for worker in Worker.all(connection=django_rq.get_connection("default")):
        worker.register_death()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"].startswith("none seen")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(conn: redis.Redis) -> None:
    for _ in range(50):
        try:
            conn.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_readiness_follows_redis_going_down_and_coming_back(monkeypatch, tmp_path):
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    conn = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1)
    monkeypatch.setattr(health, "_connection", lambda: conn)
    try:
        wait_up(conn)
        worker = Worker(["default"], connection=conn)
        worker.register_birth()
        worker.heartbeat()
        assert Client().get("/readyz").status_code == 200
        server.terminate()
        server.wait(timeout=10)
        body = Client().get("/readyz")
        assert body.status_code == 503 and body.json()["checks"]["redis"].startswith("unavailable")
        assert str(port) not in body.content.decode()  # no address or DSN in the answer
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_up(conn)
        worker.register_birth()  # a restarted Redis keeps nothing: the worker registers again, as rq's does
        worker.heartbeat()
        assert Client().get("/readyz").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
