"""The project's RQ worker: the job modules and SDKs load before any fork."""

import sys

import django_rq
import pytest

from wedbackup.worker import Worker, worker_preload


def worker() -> Worker:
    return django_rq.get_worker("bulk", worker_class=Worker)


def test_the_settings_make_it_the_rqworker_class():
    assert type(django_rq.get_worker("bulk")) is Worker


def test_it_imports_the_job_modules_before_it_forks(monkeypatch, settings, rq_queues):
    for name in ("backups.tasks", "costs.tasks", "console.tasks"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    worker().work(burst=True, with_scheduler=False)  # an empty queue: it starts, finds nothing, stops
    assert {"backups.tasks", "costs.tasks", "console.tasks"} <= set(sys.modules)


def test_a_module_function_entry_is_called(monkeypatch):
    monkeypatch.delitem(sys.modules, "providers.backends.box", raising=False)
    worker_preload(["providers.backends:backends_preload"])
    assert "providers.backends.box" in sys.modules  # every backend module, imported once


def test_a_wrong_entry_fails_loudly():
    with pytest.raises(ModuleNotFoundError):
        worker_preload(["no_such_module_here"])
    with pytest.raises(AttributeError):
        worker_preload(["providers.backends:no_such_function"])
