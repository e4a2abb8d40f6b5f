"""`manage.py optimize_costs --apply --wait` as a tool: a rich bar on a terminal while the apply jobs run on the real
servers (SeaweedFS, Azurite), none when piped or with --json, a one-line summary last, and its exit codes."""

import json

import pytest

from backups.models import BackupJob
from backups.tasks import backup_start
from providers.localservers.seaweedfs import s3_client
from providers.models import Provider
from tests.fixtures.azure import azure_service
from tests.fixtures.clouds import small_old_wedding
from tests.terminal import BAR, ESC, run_command

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.servers]


@pytest.fixture
def backed_up(tmp_path, cost_servers, run_workers):
    wedding = small_old_wedding(tmp_path)
    job = backup_start(wedding=wedding)
    run_workers()
    job.refresh_from_db()
    assert job.status == BackupJob.Status.SUCCEEDED, job.error_summary
    Provider.objects.filter(pk=cost_servers["wasabi"].pk).update(enabled=True)  # somewhere cheaper to move to
    return wedding


def test_apply_wait_on_a_terminal_shows_a_bar_then_the_summary(backed_up, run_workers):
    result = run_command("optimize_costs", "--wedding", str(backed_up.pk), "--apply", "--wait", "--no-measure",
                         tty=True, while_running=run_workers)
    assert result.code == 0, result.out
    assert BAR in result.out and ESC in result.out and "applying" in result.out
    summary = result.last_line
    assert "proposal(s), saving $" in summary and "; applied 2 of 2 (" in summary, result.lines
    assert {j.status for j in BackupJob.objects.filter(kind="optimise")} == {"succeeded"}


def test_apply_wait_piped_and_as_json(backed_up, run_workers):
    piped = run_command("optimize_costs", "--wedding", str(backed_up.pk), "--apply", "--wait", "--no-measure",
                        tty=False, while_running=run_workers)
    assert piped.code == 0, piped.err
    assert ESC not in piped.out + piped.err and BAR not in piped.out + piped.err
    assert "; applied 2 of 2 (" in piped.last_line and "job #" in piped.out
    again = run_command("optimize_costs", "--wedding", str(backed_up.pk), "--apply", "--wait", "--json",
                        "--no-measure", tty=True, while_running=run_workers)
    assert again.code == 0 and ESC not in again.out and BAR not in again.out
    data = json.loads(again.out)
    assert data["summary"].startswith(f"{len(data['proposals'])} proposal(s)")
    assert all(p["job_status"] in (None, "succeeded") for p in data["proposals"])


def test_an_apply_that_fails_everywhere_exits_3(backed_up, cost_servers, seaweedfs, azurite, run_workers):
    # Every stored copy lost behind our back (through the servers' own APIs): no step can re-class or move one.
    bucket = cost_servers["s3"].bucket
    s3 = s3_client(seaweedfs)
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    container = azure_service(azurite).get_container_client(bucket)
    for blob in container.list_blobs():
        container.delete_blob(blob.name)
    result = run_command("optimize_costs", "--wedding", str(backed_up.pk), "--apply", "--wait", "--no-measure",
                         tty=False, while_running=run_workers)
    assert result.code == 3, result.out + result.err
    assert "2 apply job(s) did not succeed" in result.err and "; applied 0 of 2 (" in result.last_line
