"""Bucket lifecycle rules (``lifecycle_get`` / ``lifecycle_put``) where a backend declares ``lifecycle_rules``.

S3 runs on moto's server (SeaweedFS keeps no lifecycle configuration), GCS on the GCS emulator (it stores the
bucket's lifecycle as the JSON API sends it; neither server moves objects by age, so what is checked is the
configuration the provider would act on). Every other kind declares the capability off and refuses loudly.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from providers.backends import BACKENDS, backend_class, backend_from_config
from providers.backends.base import Backend, BackendConfig, PermanentError
from providers.backends.base_lifecycle import LifecycleRule
from providers.backends.gcs_lifecycle import gcs_rule_documents
from providers.backends.s3_lifecycle import s3_rule_document, s3_rule_read
from providers.localservers.base import RunningServer
from tests.fixtures.gcs import gcs_config
from tests.fixtures.s3 import PART_SIZE, new_bucket_name

#: moto keeps no ObjectSizeGreaterThan (it drops the size filter), so the round trips use a rule without one; the
#: document with one is checked in test_the_rule_documents_we_send.
OURS = LifecycleRule(id="wedbackup-tiering", prefix="weddings/", transitions=((30, "STANDARD_IA"), (365, "GLACIER_IR")))
SIZED = LifecycleRule(id="wedbackup-tiering", prefix="weddings/", min_size=131072,
                      transitions=((30, "STANDARD_IA"), (365, "GLACIER_IR")))
#: An admin's soft-delete window (keep_versions buckets rely on one): never ours to touch.
THEIRS = {"ID": "admin-soft-delete", "Status": "Enabled", "Filter": {"Prefix": ""},
          "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}


def _moto(moto_s3: RunningServer, kind: str = "aws_s3") -> tuple[Backend, Any]:
    endpoint = str(moto_s3.extra["endpoint"])
    bucket = new_bucket_name()
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="moto",
                          aws_secret_access_key="moto")
    client.create_bucket(Bucket=bucket)
    backend = backend_from_config(BackendConfig(
        name="moto", kind=kind, bucket=bucket, endpoint=endpoint, part_size=PART_SIZE,
        credentials={"access_key_id": "moto", "secret_access_key": "moto"}))
    return backend, client


def _rules(client: Any, bucket: str) -> list[dict]:
    return client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


def test_s3_installs_our_rules_reads_them_back_and_a_second_put_changes_nothing(moto_s3: RunningServer) -> None:
    backend, client = _moto(moto_s3)
    assert backend.lifecycle_rules and backend.lifecycle_get() == []
    assert backend.lifecycle_put([OURS]) is True
    [doc] = _rules(client, backend.config.bucket)
    assert doc["ID"] == "wedbackup-tiering" and doc["Status"] == "Enabled"
    assert doc["Filter"] == {"Prefix": "weddings/"}
    assert [(t["Days"], t["StorageClass"]) for t in doc["Transitions"]] == [(30, "STANDARD_IA"), (365, "GLACIER_IR")]
    assert backend.lifecycle_get() == [OURS]
    assert backend.lifecycle_put([OURS]) is False  # idempotent: nothing written
    colder = LifecycleRule(id=OURS.id, prefix=OURS.prefix,
                           transitions=((30, "STANDARD_IA"), (180, "DEEP_ARCHIVE")))
    assert backend.lifecycle_put([colder]) is True and backend.lifecycle_get() == [colder]


def test_s3_keeps_every_rule_that_is_not_ours(moto_s3: RunningServer) -> None:
    backend, client = _moto(moto_s3)
    bucket = backend.config.bucket
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [THEIRS]})
    [theirs] = backend.lifecycle_get()
    assert not theirs.ours and theirs.raw["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert backend.lifecycle_put([OURS]) is True
    docs = _rules(client, bucket)
    assert [d["ID"] for d in docs] == ["admin-soft-delete", "wedbackup-tiering"]
    assert docs[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert backend.lifecycle_put([]) is True  # ours removed, theirs stays
    assert [d["ID"] for d in _rules(client, bucket)] == ["admin-soft-delete"]
    assert backend.lifecycle_put([]) is False


def test_removing_our_only_rules_removes_the_configuration(moto_s3: RunningServer) -> None:
    backend, _ = _moto(moto_s3)
    backend.lifecycle_put([OURS])
    assert backend.lifecycle_put([]) is True and backend.lifecycle_get() == []


@pytest.mark.parametrize("rule, why", [
    (LifecycleRule(id="admin-1", prefix="weddings/", transitions=((30, "STANDARD_IA"),)), "ours must start"),
    (LifecycleRule(id="wedbackup-x", prefix="weddings/", transitions=((30, "GLACIER_IR"), (60, "STANDARD_IA"))),
     "colder"),
    (LifecycleRule(id="wedbackup-x", prefix="weddings/", transitions=((30, "STANDARD"),)), "colder"),
    (LifecycleRule(id="wedbackup-x", prefix="weddings/", transitions=()), "distinct ages"),
])
def test_a_rule_that_is_not_ours_or_would_warm_objects_is_refused(moto_s3: RunningServer, rule, why) -> None:
    backend, client = _moto(moto_s3)
    with pytest.raises(PermanentError, match=why):
        backend.lifecycle_put([rule])
    assert backend.lifecycle_get() == []


def test_wasabi_shares_the_code_but_has_one_class_so_it_declares_no_tiering(moto_s3: RunningServer) -> None:
    backend, _ = _moto(moto_s3, kind="wasabi")
    assert backend.lifecycle_rules is False
    with pytest.raises(PermanentError, match="colder"):
        backend.lifecycle_put([OURS])


def test_gcs_installs_our_rules_through_the_bucket_lifecycle_api_and_keeps_others(gcs_emulator, gcs_bucket) -> None:
    backend = backend_from_config(gcs_config(gcs_emulator, bucket=gcs_bucket))
    ours = LifecycleRule(id="wedbackup-tiering", prefix="weddings/", transitions=((30, "NEARLINE"), (365, "ARCHIVE")))
    assert backend.lifecycle_rules and backend.lifecycle_get() == []
    bucket = backend._bucket()
    bucket.add_lifecycle_delete_rule(age=3650, matches_prefix=["scratch/"])
    bucket.patch()
    assert backend.lifecycle_put([ours]) is True
    rules = backend.lifecycle_get()
    assert [r for r in rules if r.ours] == [ours]
    [theirs] = [r for r in rules if not r.ours]
    assert theirs.raw["action"] == {"type": "Delete"} and theirs.raw["condition"]["age"] == 3650
    assert backend.lifecycle_put([ours]) is False
    assert backend.lifecycle_put([]) is True
    assert [r.raw["action"]["type"] for r in backend.lifecycle_get()] == ["Delete"]


def test_the_rule_documents_we_send() -> None:
    rule = LifecycleRule(id="wedbackup-tiering", prefix="weddings/", transitions=((30, "NEARLINE"), (365, "ARCHIVE")))
    classes = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
    assert gcs_rule_documents(rule, classes) == [
        {"action": {"type": "SetStorageClass", "storageClass": "NEARLINE"},
         "condition": {"age": 30, "matchesPrefix": ["weddings/", ".wedbackup-rule/wedbackup-tiering/"],
                       "matchesStorageClass": ["STANDARD"]}},
        {"action": {"type": "SetStorageClass", "storageClass": "ARCHIVE"},
         "condition": {"age": 365, "matchesPrefix": ["weddings/", ".wedbackup-rule/wedbackup-tiering/"],
                       "matchesStorageClass": ["STANDARD", "NEARLINE", "COLDLINE"]}}]
    with pytest.raises(ValueError, match="size"):
        gcs_rule_documents(SIZED, classes)
    # S3: objects of at least 128 KiB (the classes bill smaller ones as 128 KiB).
    assert s3_rule_document(SIZED) == {
        "ID": "wedbackup-tiering", "Status": "Enabled",
        "Filter": {"And": {"Prefix": "weddings/", "ObjectSizeGreaterThan": 131071}},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 365, "StorageClass": "GLACIER_IR"}]}
    assert s3_rule_read(s3_rule_document(SIZED)) == SIZED


def test_only_s3_and_gcs_declare_lifecycle_rules_and_the_others_refuse_loudly(tmp_path) -> None:
    declared = sorted(kind for kind in BACKENDS if backend_class(kind).lifecycle_rules)
    # Azure lifecycle management is a management-plane API (azure-mgmt-storage, a subscription and a role on the
    # storage account), which Azurite does not model: declared off. B2's rules only hide and delete; Wasabi,
    # Dropbox, Box and a watched folder have one class.
    assert declared == ["aws_s3", "gcs"]
    folder = backend_from_config(BackendConfig(name="f", kind="watched_folder", bucket=str(tmp_path)))
    with pytest.raises(PermanentError, match="not supported"):
        folder.lifecycle_put([OURS])
    with pytest.raises(PermanentError, match="not supported"):
        folder.lifecycle_get()
