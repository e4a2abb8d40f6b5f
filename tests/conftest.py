"""Shared fixtures. Real servers are started once per session by the plugins below."""

pytest_plugins = [
    "tests.fixtures.watched_folder",
    "tests.fixtures.s3",
    "tests.fixtures.gcs",
    "tests.fixtures.azure",
    "tests.fixtures.b2",
    "tests.fixtures.dropbox",
    "tests.fixtures.box",
    "tests.fixtures.clouds",
]

import os  # noqa: E402

import pytest  # noqa: E402

# The console's import and restore-to-folder roots: anywhere for the suite (worker processes read this too);
# tests of the roots themselves narrow them with the settings fixture.
os.environ.setdefault("WEDBACKUP_IMPORT_ROOTS", "/")
os.environ.setdefault("WEDBACKUP_RESTORE_ROOTS", "/")


@pytest.fixture(autouse=True)
def _roots_anywhere(settings):
    """The same in this process (Django read its settings before this file was loaded)."""
    settings.WEDBACKUP_IMPORT_ROOTS = ["/"]
    settings.WEDBACKUP_RESTORE_ROOTS = ["/"]


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", "staff@example.com", "pw-staff-1234", is_staff=True,
                                                 is_superuser=True)


@pytest.fixture
def plain_user(django_user_model):
    return django_user_model.objects.create_user("plain", "plain@example.com", "pw-plain-1234")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def plain_client(client, plain_user):
    client.force_login(plain_user)
    return client


@pytest.fixture
def rq_queues(settings):
    """Empty RQ queues for the test (their registries too)."""
    import time

    import django_rq
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    queues = [django_rq.get_queue(name) for name in settings.QUEUE_NAMES]
    for q in queues:
        # rq 3 cannot remove() from the started registry; expiring everything in it clears leftovers. First:
        # an expired job that may be retried goes back to its queue or the scheduled registry, emptied next.
        StartedJobRegistry(queue=q).cleanup(timestamp=time.time() + 10**6)
    for q in queues:
        q.empty()
        for registry in (FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry):
            reg = registry(queue=q)
            for job_id in reg.get_job_ids():
                reg.remove(job_id, delete_job=True)
    return queues


@pytest.fixture
def run_workers(rq_queues):
    """Run a real RQ worker over every queue until they are empty (burst), in this process."""
    import django_rq
    from rq import SimpleWorker

    def run(max_jobs: int | None = None) -> None:
        worker = django_rq.get_worker(*[q.name for q in rq_queues], worker_class=SimpleWorker)
        worker.work(burst=True, max_jobs=max_jobs, with_scheduler=False)

    return run


@pytest.fixture(autouse=True)
def _thumbnails_in_tmp(settings, tmp_path_factory):
    """Thumbnails made by ingest land in the session's temporary folder, not the checkout's var/."""
    settings.WEDBACKUP_THUMB_DIR = str(tmp_path_factory.getbasetemp() / "thumbnails")


@pytest.fixture(autouse=True)
def _isolated_breakers(settings):
    """Circuit breakers live in Redis: give every test its own key prefix, so no state leaks between tests."""
    import uuid

    prefix = f"test:breaker:{uuid.uuid4().hex}"
    settings.WEDBACKUP_BREAKER_PREFIX = prefix
    yield
    import django_rq

    conn = django_rq.get_connection("default")
    for key in conn.scan_iter(f"{prefix}:*"):
        conn.delete(key)
