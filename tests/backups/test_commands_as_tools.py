"""The long commands as tools: a rich progress bar on a terminal, none when piped, with --json or --no-progress; one
summary line last; the documented exit codes. Real processes on real watched folders, real Redis and RQ workers."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from backups.tasks import backup_start
from tests.backups.test_backup_engine import folders, three_folders, wedding_from  # noqa: F401 (fixtures)
from tests.terminal import ANSI, BAR, ESC, run_command

pytestmark = pytest.mark.django_db(transaction=True)
LONG_COMMANDS = ["import_wedding", "backup_wedding", "verify_wedding", "restore_wedding", "optimize_costs"]


@pytest.fixture
def backed_up(folders, three_folders, run_workers):  # noqa: F811
    wedding = wedding_from(folders)
    backup_start(wedding=wedding)
    run_workers()
    return wedding


def corrupt(three_folders, wedding, *relative: str, providers=(0, 1, 2)) -> None:  # noqa: F811
    for i in providers:
        for rel in relative:
            for stored in (Path(three_folders[i].bucket) / "weddings" / wedding.slug).glob(f"*/{rel}"):
                stored.write_bytes(b"bit rot")


def run(*args: str) -> tuple[int, list[str]]:
    """In this process, stdout not a terminal: (exit code, stdout lines)."""
    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
    assert ESC not in out.getvalue()
    return code, out.getvalue().splitlines()


# -- import_wedding --------------------------------------------------------------------------------------------------

IMPORT = ("--couple", "Zoë & Åsa", "--date", "2025-05-01", "--country", "US")


def test_import_on_a_terminal_shows_a_bar_then_the_summary(folders):  # noqa: F811
    result = run_command("import_wedding", str(folders), *IMPORT, tty=True)
    assert result.code == 0, result.out
    assert BAR in result.out and "cataloguing" in result.out and "3/? files" in ANSI.sub("", result.out)
    assert result.lines[-1].startswith("catalogued wedding ") and result.lines[-1].endswith(
        ": 3 added, 0 changed, 0 unchanged, 0 removed from the folder (kept in backups), 0 problem(s)")


def test_import_piped_and_json(folders):  # noqa: F811
    code, lines = run("import_wedding", str(folders), *IMPORT)
    assert code == 0 and lines == [lines[-1]] and "3 added" in lines[-1]
    result = run_command("import_wedding", str(folders), *IMPORT, "--json", tty=True)
    assert result.code == 0 and ESC not in result.out and BAR not in result.out
    data = json.loads(result.out)
    assert data["unchanged"] == 3 and "3 unchanged" in data["summary"]


def test_import_exit_codes_partial_nothing_and_missing_folder(folders, tmp_path):  # noqa: F811
    (folders / "link.jpg").symlink_to(folders / "docs" / "contract.pdf")
    code, lines = run("import_wedding", str(folders), *IMPORT)
    assert code == 1 and lines[0].startswith("  problem: link.jpg: symbolic link") and "1 problem(s)" in lines[-1]
    only_links = tmp_path / "links"
    only_links.mkdir()
    (only_links / "a.jpg").symlink_to(folders / "docs" / "contract.pdf")
    code, lines = run("import_wedding", str(only_links), "--couple", "C & D", "--date", "2025-01-01", "--country", "FR")
    assert code == 3 and "0 added" in lines[-1]
    result = run_command("import_wedding", str(tmp_path / "nowhere"), *IMPORT, tty=False)
    assert result.code == 2 and "is not a folder" in result.err


# -- backup_wedding --wait -------------------------------------------------------------------------------------------

def test_backup_wait_on_a_terminal_shows_a_bar_then_the_summary(folders, three_folders, run_workers):  # noqa: F811
    wedding = wedding_from(folders)
    result = run_command("backup_wedding", str(wedding.pk), "--wait", tty=True, while_running=run_workers)
    assert result.code == 0, result.out
    assert BAR in result.out and ESC in result.out and "backing up" in result.out
    assert result.last_line.startswith("backed up 3 of 3 files (")
    assert "uploaded) to 3 provider(s) in " in result.last_line and result.last_line.endswith("; 0 below policy")


def test_backup_wait_piped_has_no_bar_and_ends_with_the_summary(folders, three_folders, run_workers):  # noqa: F811
    wedding = wedding_from(folders)
    result = run_command("backup_wedding", str(wedding.pk), "--wait", tty=False, while_running=run_workers)
    assert result.code == 0, result.err
    assert ESC not in result.out + result.err and BAR not in result.out + result.err
    assert result.out.splitlines()[0].startswith("Backup job ")
    assert result.last_line.startswith("backed up 3 of 3 files") and "0 below policy" in result.last_line


def test_backup_json_on_a_terminal_is_json_and_nothing_else(folders, three_folders, run_workers):  # noqa: F811
    wedding = wedding_from(folders)
    result = run_command("backup_wedding", str(wedding.pk), "--wait", "--json", tty=True, while_running=run_workers)
    assert result.code == 0
    assert ESC not in result.out and BAR not in result.out
    data = json.loads(result.out)
    assert data["status"] == "succeeded" and data["files_done"] == 3 and data["summary"].startswith("backed up 3")


def test_backup_exit_codes_partial_and_failed(folders, three_folders, run_workers):  # noqa: F811
    wedding = wedding_from(folders)
    (folders / "docs" / "contract.pdf").write_bytes(b"%PDF-1.4 changed after import")
    partial = run_command("backup_wedding", str(wedding.pk), "--wait", tty=False, while_running=run_workers)
    assert partial.code == 1 and "backup ended partial" in partial.err
    assert partial.last_line.startswith("backed up 2 of 3 files") and "1 below policy" in partial.last_line

    for provider in three_folders:
        provider.status = "down"
        provider.save()
    failed = run_command("backup_wedding", str(wedding.pk), "--wait", tty=False, while_running=run_workers)
    assert failed.code == 3 and "backup ended failed" in failed.err
    assert failed.last_line.startswith("backup failed: 0 of 3 files")


def test_backup_gives_up_waiting_with_exit_code_4(folders, three_folders, rq_queues):  # noqa: F811
    wedding = wedding_from(folders)
    with pytest.raises(CommandError, match="gave up after 0s") as caught:
        call_command("backup_wedding", wedding.pk, "--wait", "--timeout", "0.2", stdout=StringIO())
    assert caught.value.returncode == 4


def test_backup_without_wait_says_it_is_queued(folders, three_folders, rq_queues):  # noqa: F811
    code, lines = run("backup_wedding", str(wedding_from(folders).pk))
    assert code == 0 and lines[-1].startswith("backup job ") and "queued on 'default'" in lines[-1]


# -- verify_wedding --------------------------------------------------------------------------------------------------

def test_verify_on_a_terminal_shows_a_bar_and_no_progress_turns_it_off(backed_up):
    result = run_command("verify_wedding", str(backed_up.pk), "--deep", tty=True)
    assert result.code == 0, result.out
    assert BAR in result.out and "verifying" in result.out
    assert result.last_line.startswith(f"verified 9 of 9 replicas (deep) of {backed_up.slug} in ")
    assert result.last_line.endswith("0 mismatched, 0 unreachable, 0 orphan(s)")
    quiet = run_command("verify_wedding", str(backed_up.pk), "--no-progress", tty=True)
    assert quiet.code == 0 and ESC not in quiet.out and BAR not in quiet.out
    assert quiet.lines == [quiet.last_line] and quiet.last_line.startswith("verified 9 of 9 replicas of")


def test_verify_piped_json_and_the_partial_exit_code(backed_up, three_folders):  # noqa: F811
    code, lines = run("verify_wedding", str(backed_up.pk))
    assert code == 0 and lines == [lines[-1]] and lines[-1].startswith("verified 9 of 9 replicas")
    corrupt(three_folders, backed_up, "docs/contract.pdf", providers=(1,))
    result = run_command("verify_wedding", str(backed_up.pk), "--deep", "--json", tty=True)
    end = result.out.rindex("}") + 1  # then Django's error line (in red: it is a terminal)
    assert result.code == 1 and ESC not in result.out[:end] and BAR not in result.out
    data = json.loads(result.out[:end])
    assert len(data["mismatched"]) == 1 and data["summary"].startswith("verified 8 of 9 replicas (deep)")
    assert "verification found problems" in result.out[end:]


# -- restore_wedding -------------------------------------------------------------------------------------------------

def test_restore_on_a_terminal_shows_a_bar_then_the_summary(backed_up, tmp_path):
    target = tmp_path / "restored"
    result = run_command("restore_wedding", str(backed_up.pk), "--to", str(target), tty=True)
    assert result.code == 0, result.out
    assert BAR in result.out and "restoring" in result.out
    assert result.last_line.startswith(f"restored 3 of 3 files (5.0 kB) of {backed_up.slug} to {target} in ")
    assert (target / "docs" / "contract.pdf").read_bytes() == b"%PDF-1.4 contract"


def test_restore_piped_and_json(backed_up, tmp_path):
    code, lines = run("restore_wedding", str(backed_up.pk), "--to", str(tmp_path / "a"))
    assert code == 0 and lines == [lines[-1]] and lines[-1].startswith("restored 3 of 3 files")
    result = run_command("restore_wedding", str(backed_up.pk), "--to", str(tmp_path / "b"), "--json", tty=True)
    assert result.code == 0 and ESC not in result.out
    data = json.loads(result.out)
    assert len(data["restored"]) == 3 and data["failed"] == {} and data["summary"].startswith("restored 3 of 3")


def test_restore_exit_codes_partial_nothing_and_bad_target(backed_up, three_folders, tmp_path):  # noqa: F811
    corrupt(three_folders, backed_up, "docs/contract.pdf")
    code, lines = run("restore_wedding", str(backed_up.pk), "--to", str(tmp_path / "a"))
    assert code == 1 and lines[0].startswith("  failed: docs/contract.pdf")
    assert lines[-1].startswith("restored 2 of 3 files") and "1 failed" in lines[-1]
    corrupt(three_folders, backed_up, "ceremony/IMG 001 é.jpg", "empty.txt")
    code, lines = run("restore_wedding", str(backed_up.pk), "--to", str(tmp_path / "b"))
    assert code == 3 and lines[-1].startswith("restored 0 of 3 files")
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"")
    result = run_command("restore_wedding", str(backed_up.pk), "--to", str(a_file), tty=False)
    assert result.code == 2 and "cannot restore into" in result.err


# -- usage errors and --help, for every long command -----------------------------------------------------------------

@pytest.mark.parametrize("args", [["verify_wedding", "999999"], ["backup_wedding", "999999", "--wait"],
                                  ["restore_wedding", "999999", "--to", "/tmp/x"],
                                  ["optimize_costs", "--wedding", "999999"]])
def test_an_unknown_wedding_is_a_usage_error(args):
    result = run_command(*args, tty=False)
    assert result.code == 2 and "no wedding with id 999999" in result.err and result.out == ""


def test_a_missing_argument_is_a_usage_error():
    result = run_command("restore_wedding", "1", tty=False)
    assert result.code == 2 and "--to" in result.err


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_help_documents_the_exit_codes_and_no_progress(command, capsys):
    with pytest.raises(SystemExit):
        call_command(command, "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0 done; 1 partial" in text and "3 nothing could be done" in text and "--no-progress" in text
