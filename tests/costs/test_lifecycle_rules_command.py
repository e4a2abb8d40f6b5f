"""`manage.py lifecycle_rules`: plan, install (audited), read back and remove our rules on moto's S3 server and the
GCS emulator; with our rules in place, `optimize_costs` no longer proposes per object what the rules do."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from io import StringIO

import boto3
import pytest
from django.core.management import call_command

from backups.models import AuditEvent, Replica
from costs.models import Optimization
from providers.backends import backend_for
from providers.localservers.gcs_emulator import ensure_bucket
from providers.models import Provider
from tests.factories import make_asset, make_provider, make_wedding

pytestmark = pytest.mark.django_db
ADMIN_RULE = {"ID": "admin-soft-delete", "Status": "Enabled", "Filter": {"Prefix": ""},
              "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}


@pytest.fixture
def rule_fleet(moto_s3, gcs_emulator, settings):
    """A two-year-old wedding (photos and a video) with every copy in the default class, on S3 (moto), GCS and
    Azure (never contacted: it declares no lifecycle rules). The S3 bucket already holds an admin's rule."""
    settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = True
    name = f"wb-{uuid.uuid4().hex[:16]}"
    endpoint = str(moto_s3.extra["endpoint"])
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto",
                          aws_secret_access_key="moto")
    client.create_bucket(Bucket=name)
    client.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [ADMIN_RULE]})
    ensure_bucket(gcs_emulator, name)
    providers = [
        Provider.objects.create(name="s3", kind="aws_s3", region="us-east-1", bucket=name, endpoint=endpoint,
                                credentials={"access_key_id": "moto", "secret_access_key": "moto"}),
        Provider.objects.create(name="gcs", kind="gcs", region="us-east1", bucket=name,
                                endpoint=gcs_emulator.extra["endpoint"], credentials={"anonymous": True},
                                options={"project": gcs_emulator.extra["project"]}),
        make_provider(name="azure", kind="azure_blob", region="eastus")]
    wedding = make_wedding(date=dt.date.today() - dt.timedelta(days=730))
    assets = [make_asset(wedding, relative_path=f"p/{i}.jpg", size=3_000_000 + i) for i in range(3)]
    assets.append(make_asset(wedding, relative_path="v/dance.mp4", kind="video", size=400_000_000))
    for asset in assets:
        for p, cls in zip(providers, ("STANDARD", "STANDARD", "Hot"), strict=True):
            Replica.objects.create(asset=asset, provider=p, storage_class=cls, size=asset.size, sha256=asset.sha256,
                                   status="verified", object_key=f"weddings/{wedding.slug}/{asset.relative_path}")
    return {"client": client, "bucket": name, "providers": providers, "wedding": wedding}


def run(command: str, *args: str) -> dict:
    out = StringIO()
    call_command(command, *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_plans_installs_reads_back_and_removes_our_rules_keeping_the_admins(rule_fleet):
    client, bucket = rule_fleet["client"], rule_fleet["bucket"]
    shown = run("lifecycle_rules")
    plan = shown["plan"]
    assert [r["provider"] for r in plan["rules"]] == ["s3", "gcs"]
    s3_rule = plan["rules"][0]["rules"][0]
    assert (s3_rule["id"], s3_rule["prefix"], s3_rule["min_size"]) == ("wedbackup-tiering", "weddings/", 131072)
    assert [(t["days"], t["storage_class"]) for t in s3_rule["transitions"]] == [(30, "STANDARD_IA"),
                                                                              (365, "GLACIER_IR")]
    assert plan["provider_transitions"] == 8  # four objects on each of S3 and GCS, moved by the providers
    assert plan["with_rules_requests"] < plan["per_object_requests"]
    assert [(i["provider"], i["ours"], i["others"]) for i in shown["in_place"]] == [("s3", [], 1), ("gcs", [], 0)]
    assert not AuditEvent.objects.filter(action__startswith="lifecycle_rules").exists()

    installed = run("lifecycle_rules", "--install")
    assert [(r["provider"], r["changed"]) for r in installed["installed"]] == [("s3", True), ("gcs", True)]
    assert [(i["provider"], i["ours"], i["others"]) for i in installed["in_place"]] == [
        ("s3", ["wedbackup-tiering"], 1), ("gcs", ["wedbackup-tiering"], 0)]
    ids = [r["ID"] for r in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]]
    assert ids == ["admin-soft-delete", "wedbackup-tiering"]
    events = AuditEvent.objects.filter(action="lifecycle_rules.install").order_by("pk")
    assert [e.target for e in events] == [f"provider:{p.pk}" for p in rule_fleet["providers"][:2]]

    # GCS: nothing written the second time, nothing audited. moto keeps no ObjectSizeGreaterThan (real S3 does), so
    # it reads back a rule without the size filter we sent, and S3 is written again there, with the same rules.
    again = run("lifecycle_rules", "--install")
    assert [r["changed"] for r in again["installed"]] == [True, False]
    assert AuditEvent.objects.filter(action="lifecycle_rules.install").count() == 3
    assert [r["ID"] for r in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]] == ids

    removed = run("lifecycle_rules", "--remove")
    assert [r["changed"] for r in removed["installed"]] == [True, True]
    assert [r["ID"] for r in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]] == [
        "admin-soft-delete"]
    assert AuditEvent.objects.filter(action="lifecycle_rules.remove").count() == 2


def test_with_our_rules_in_place_the_optimiser_leaves_their_class_changes_to_them(rule_fleet):
    s3, gcs, azure = rule_fleet["providers"]

    def class_changes() -> set[tuple[int, str]]:
        call_command("optimize_costs", "--json", "--no-measure", stdout=StringIO())
        return {(c["provider"], c["to_class"]) for o in Optimization.objects.filter(status="proposed", kind="lifecycle")
                for c in o.changes if c["action"] == "change_class"}

    before = class_changes()
    assert {p for p, _ in before} == {s3.pk, gcs.pk, azure.pk}
    run("lifecycle_rules", "--install")
    after = class_changes()
    # Azure has no rules: its per-object changes stay. On S3 only a class colder than the rules' is left (Deep
    # Archive for the old video); GCS's rules reach its cheapest class, so nothing is left there.
    assert {p for p, _ in after} == {s3.pk, azure.pk}
    assert {cls for p, cls in after if p == s3.pk} == {"DEEP_ARCHIVE"}


def test_it_reads_as_lines_with_a_summary(rule_fleet):
    out = StringIO()
    call_command("lifecycle_rules", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("planned on s3: wedbackup-tiering on 'weddings/', objects of 131072 bytes and up: "
                               "STANDARD_IA after 30 days, GLACIER_IR after 365 days; 4 objects transitioned")
    assert "in place on s3: none of ours (1 other rule(s) kept)" in lines
    assert lines[-1].startswith("2 provider(s) with rules; our workers' requests for the fleet: ")


def test_sync_records_the_class_the_providers_rules_moved_each_copy_to(rule_fleet):
    s3 = rule_fleet["providers"][0]
    run("lifecycle_rules", "--install")
    backend = backend_for(s3)
    # What S3's rules would have done by now (moto runs no lifecycle): the photos are in Glacier IR, the video not.
    for r in Replica.objects.filter(provider=s3).select_related("asset"):
        data = r.asset.relative_path.encode()
        backend.put(r.object_key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                    storage_class="GLACIER_IR" if r.asset.kind == "photo" else "STANDARD")
    stray = b"not ours"
    backend.put("weddings/someone-else/x.jpg", io.BytesIO(stray), len(stray), sha256=hashlib.sha256(stray).hexdigest(),
                storage_class="STANDARD_IA")
    synced = run("lifecycle_rules", "--sync")["synced"]
    # GCS has our rules too but holds no objects here; the stray object has no replica row.
    assert synced == [{"provider": "s3", "objects": 5, "changed": 3}, {"provider": "gcs", "objects": 0, "changed": 0}]
    assert sorted(Replica.objects.filter(provider=s3).values_list("asset__kind", "storage_class")) == [
        ("photo", "GLACIER_IR")] * 3 + [("video", "STANDARD")]
    assert AuditEvent.objects.filter(action="lifecycle_rules.sync", target=f"provider:{s3.pk}").count() == 1
    assert run("lifecycle_rules", "--sync")["synced"][0]["changed"] == 0
    assert AuditEvent.objects.filter(action="lifecycle_rules.sync").count() == 1
