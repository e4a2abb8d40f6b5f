"""The console imports from, and restores into, configured server folders only (WEDBACKUP_*_ROOTS)."""

import os

import pytest

from backups.forms import ImportForm, RestoreForm
from backups.ingest import import_run
from backups.models import BackupJob
from backups.restore import restore_target_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def roots(settings, tmp_path):
    (tmp_path / "incoming" / "ana-ben").mkdir(parents=True)
    (tmp_path / "restores").mkdir()
    (tmp_path / "secrets").mkdir()
    settings.WEDBACKUP_IMPORT_ROOTS = [str(tmp_path / "incoming")]
    settings.WEDBACKUP_RESTORE_ROOTS = [str(tmp_path / "restores")]
    return tmp_path


def import_form(path):
    return ImportForm({"path": str(path), "couple": "Ana & Ben", "date": "2026-06-20", "country": "FR",
                       "plan": "standard"})


def test_an_import_from_inside_a_root_is_accepted_and_one_elsewhere_refused(roots):
    assert import_form(roots / "incoming" / "ana-ben").is_valid()
    form = import_form(roots / "secrets")
    assert not form.is_valid() and "only inside" in form.errors["path"][0]
    assert "WEDBACKUP_IMPORT_ROOTS" in form.errors["path"][0]


def test_a_symlink_inside_a_root_that_leads_out_is_refused(roots):
    os.symlink(roots / "secrets", roots / "incoming" / "shortcut")
    assert not import_form(roots / "incoming" / "shortcut").is_valid()
    assert not import_form(roots / "incoming" / ".." / "secrets").is_valid()


def test_the_import_job_checks_again(roots):
    job = BackupJob.objects.create(kind=BackupJob.Kind.IMPORT, params={
        "path": str(roots / "secrets"), "couple": "Ana & Ben", "date": "2026-06-20", "country": "FR"})
    import_run(job=job)
    job.refresh_from_db()
    assert job.status == BackupJob.Status.FAILED and "only inside" in job.error_summary
    assert job.wedding is None


def test_a_restore_goes_only_into_a_restore_root(roots):
    assert restore_target_problem(str(roots / "restores" / "ana-ben")) == ""
    assert "only inside" in restore_target_problem(str(roots / "secrets" / "x"))
    form = RestoreForm({"path": str(roots / "incoming" / "x"), "only": ""})
    assert not form.is_valid() and "WEDBACKUP_RESTORE_ROOTS" in form.errors["path"][0]


def test_with_no_root_configured_nothing_is_allowed(settings, tmp_path):
    settings.WEDBACKUP_IMPORT_ROOTS = []
    form = import_form(tmp_path)
    assert not form.is_valid() and "none configured" in form.errors["path"][0]
