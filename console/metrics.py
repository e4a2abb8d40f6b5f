"""``/metrics`` in Prometheus' text format (prometheus-client): the fleet's figures read from the stored snapshots,
Redis and a few grouped queries over small tables, never a walk over assets or replicas per scrape."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import django_rq
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from backups.models import BackupJob
from backups.snapshots import fleet_summary
from costs.snapshots import cost_latest
from providers.breaker import breaker_store
from providers.models import Provider
from providers.queries import providers_with_usage

JOB_WINDOW = dt.timedelta(hours=24)


class FleetCollector:
    """One scrape: every family built fresh from what is stored now."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._protection()
        yield from self._providers()
        yield from self._queues_and_jobs()
        yield from self._costs()

    def _protection(self) -> Iterator[GaugeMetricFamily]:
        summary = fleet_summary()
        for name, key, doc in (
            ("wedbackup_weddings", "weddings", "Weddings with files"),
            ("wedbackup_weddings_at_risk", "weddings_at_risk", "Weddings with a file below policy"),
            ("wedbackup_assets", "assets", "Files catalogued"),
            ("wedbackup_assets_at_risk", "assets_at_risk", "Files below policy"),
            ("wedbackup_bytes_at_risk", "bytes_at_risk", "Bytes of files below policy"),
        ):
            yield GaugeMetricFamily(name, doc, value=summary[key] or 0)
        age = GaugeMetricFamily("wedbackup_snapshot_age_seconds", "Age of the oldest stored protection figure")
        if summary["refreshed_at"] is not None:
            age.add_metric([], (timezone.now() - summary["refreshed_at"]).total_seconds())
        yield age
        oldest = GaugeMetricFamily("wedbackup_rpo_oldest_unprotected_seconds",
                                   "Age of the oldest file that has not met the policy yet (0: none waiting)")
        waiting = summary["oldest_unprotected_at"]
        oldest.add_metric([], (timezone.now() - waiting).total_seconds() if waiting else 0.0)
        yield oldest
        p95 = GaugeMetricFamily("wedbackup_rpo_p95_seconds",
                                "Worst wedding's p95 seconds from file complete to protected (last 30 days)")
        if summary["worst_rpo_p95_seconds"] is not None:
            p95.add_metric([], summary["worst_rpo_p95_seconds"])
        yield p95

    def _providers(self) -> Iterator[GaugeMetricFamily]:
        replicas = GaugeMetricFamily("wedbackup_replicas", "Replicas per provider (stored usage)",
                                     labels=["provider", "status"])
        stored = GaugeMetricFamily("wedbackup_replica_bytes", "Verified bytes per provider", labels=["provider"])
        up = GaugeMetricFamily("wedbackup_provider_up", "1 when the provider takes work", labels=["provider", "status"])
        latency = GaugeMetricFamily("wedbackup_probe_latency_ms", "Latency of the last probe", labels=["provider"])
        breaker = GaugeMetricFamily("wedbackup_breaker_open", "1 while the provider's circuit breaker is not closed",
                                    labels=["provider", "state"])
        store = breaker_store()
        for p in providers_with_usage():
            replicas.add_metric([p.name, "verified"], p.verified_replicas)
            replicas.add_metric([p.name, "other"], p.other_replicas)
            stored.add_metric([p.name], p.used_bytes)
            up.add_metric([p.name, p.status], int(p.enabled and p.status in (Provider.Status.ACTIVE,
                                                                              Provider.Status.DEGRADED)))
            if p.last_latency_ms is not None:
                latency.add_metric([p.name], p.last_latency_ms)
            state = store.get(p.pk).state
            breaker.add_metric([p.name, state], int(state != "closed"))
        yield from (replicas, stored, up, latency, breaker)

    def _queues_and_jobs(self) -> Iterator[GaugeMetricFamily]:
        queued = GaugeMetricFamily("wedbackup_queue_jobs", "Jobs waiting in each RQ queue", labels=["queue"])
        for name in settings.QUEUE_NAMES:
            queued.add_metric([name], django_rq.get_queue(name).count)
        yield queued
        jobs = GaugeMetricFamily("wedbackup_jobs_recent", "Jobs created in the last 24 h, by kind and status",
                                 labels=["kind", "status"])
        rows = (BackupJob.objects.filter(created__gte=timezone.now() - JOB_WINDOW).values("kind", "status")
                .annotate(n=Count("id")).order_by())
        for row in rows:
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        yield jobs

    def _costs(self) -> Iterator[GaugeMetricFamily]:
        cost = GaugeMetricFamily("wedbackup_cost_monthly", "Monthly cost of what is stored (latest cost snapshot)",
                                 labels=["currency", "plan"])
        latest = cost_latest()
        if latest is not None:
            cost.add_metric([latest["currency"], "now"], float(latest["current_monthly"]))
            cost.add_metric([latest["currency"], "optimised"], float(latest["optimised_monthly"]))
        yield cost
