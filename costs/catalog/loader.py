"""Reads one provider's YAML price file into ProviderPrices, naming the file and field on any error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import yaml

from .prices import (
    DEFAULT_CLASS_KEY,
    EARLY_DELETION_RULES,
    KNOWN_CLASSES,
    SIZE_UNITS,
    CatalogError,
    ClassPrice,
    FlatPlan,
    Network,
    ProviderPrices,
    RetrievalTier,
)

_FILE_KEYS = {"provider", "currency", "effective_date", "size_unit", "source", "default_region_group",
              "region_groups", "classes", "plans", "default_plan", "self_hosted", "account_min_gb_month", "note"}
_GROUP_KEYS = {"regions", "egress_gb", "free_egress_ratio", "egress_over_ratio_gb", "source", "note"}
_PRICE_KEYS = {"source", "note", "min_storage_days", "early_deletion", "min_object_bytes", "overhead_class_bytes",
               "overhead_standard_bytes", "overhead_billed_as", "monitoring_per_1000_objects",
               "monitoring_min_object_bytes", "sub_tiers", "sub_tier_default", "retrieval", "retrieval_default",
               "storage_gb_month", "write_per_1000", "read_per_1000", "transition_per_1000"}
_REQUIRED_PRICE_KEYS = ("storage_gb_month", "write_per_1000", "read_per_1000", "min_storage_days", "retrieval")
_TIER_KEYS = {"per_gb", "per_1000", "hours", "source"}
_PLAN_KEYS = {"seat_month", "min_seats", "included_tb", "tb_per_extra_seat", "max_tb", "max_file_gb",
              "bandwidth_tb_per_seat_month", "source", "note"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads floats as exact Decimals."""


_Loader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node)))


class FileReader:
    def __init__(self, name: str, raw: bytes) -> None:
        self.name = name
        try:
            self.doc = yaml.load(raw, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass
        except (yaml.YAMLError, InvalidOperation) as exc:
            raise CatalogError(f"{name}: not valid YAML: {exc}") from None
        self.self_hosted = False
        self.network_sources: dict[str, dict[str, str]] = {}  # region group -> figure -> source

    def fail(self, where: str, message: str) -> CatalogError:
        return CatalogError(f"{self.name}: {where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a mapping")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(where, f"unknown field(s) {', '.join(unknown)}")
        for key in required:
            if key not in value:
                raise self.fail(f"{where}.{key}" if where else key, "missing required field")
        return value

    def source(self, value: Any, where: str) -> str:
        if isinstance(value, str) and (value.startswith("https://") or (value == "operator" and self.self_hosted)):
            return value
        allowed = "an https URL or operator" if self.self_hosted else "an https URL"
        raise self.fail(where, f"source must be {allowed}, got {value!r}")

    def number(self, value: Any, where: str, source: str, *, integer: bool = False) -> tuple[Decimal, str]:
        if isinstance(value, dict):
            self.mapping(value, where, {"value", "source"}, ("value", "source"))
            value, source = value["value"], self.source(value["source"], f"{where}.source")
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise self.fail(where, f"must be a number, got {value!r}")
        number = Decimal(value)
        if not number.is_finite() or number < 0:
            raise self.fail(where, f"must be a non-negative number, got {value}")
        if integer and number != number.to_integral_value():
            raise self.fail(where, f"must be a whole number, got {value}")
        return number, source

    def parse(self) -> ProviderPrices:
        doc = self.mapping(self.doc, "", _FILE_KEYS, ("provider", "currency", "effective_date", "size_unit",
                                                      "source", "default_region_group", "region_groups", "classes"))
        kind = doc["provider"]
        if kind not in KNOWN_CLASSES:
            raise self.fail("provider", f"unknown provider kind {kind!r}")
        if doc["currency"] != "USD":
            raise self.fail("currency", f"only USD is supported, got {doc['currency']!r}")
        self.self_hosted = doc.get("self_hosted", False) is True
        effective = doc["effective_date"]
        if isinstance(effective, str):
            try:
                effective = date.fromisoformat(effective)
            except ValueError:
                raise self.fail("effective_date", f"not an ISO date: {effective!r}") from None
        if not isinstance(effective, date):
            raise self.fail("effective_date", "must be a date")
        if doc["size_unit"] not in SIZE_UNITS:
            raise self.fail("size_unit", f"must be one of {', '.join(SIZE_UNITS)}")
        gb = SIZE_UNITS[doc["size_unit"]]
        file_source = self.source(doc["source"], "source")
        groups, networks = self.region_groups(doc["region_groups"], file_source)
        if doc["default_region_group"] not in networks:
            raise self.fail("default_region_group", f"{doc['default_region_group']!r} is not a region group")
        account_min = self.number(doc.get("account_min_gb_month", 0), "account_min_gb_month", file_source)[0]
        ctx = {"kind": kind, "gb": gb, "effective": effective, "file_source": file_source}
        classes = self.classes(doc["classes"], networks, ctx)
        plans = {name: self.plan(name, spec, ctx) for name, spec in (doc.get("plans") or {}).items()}
        default_plan = doc.get("default_plan")
        if (plans or default_plan is not None) and default_plan not in plans:
            raise self.fail("default_plan", f"{default_plan!r} is not one of the plans")
        return ProviderPrices(
            kind=kind, currency="USD", effective_date=effective, gb_bytes=gb, self_hosted=self.self_hosted,
            default_region_group=doc["default_region_group"], region_groups=MappingProxyType(groups),
            class_names=KNOWN_CLASSES[kind], classes=MappingProxyType(classes), plans=MappingProxyType(plans),
            default_plan=default_plan, account_min_bytes=int(account_min * gb), file=self.name,
        )

    def region_groups(self, spec: Any, file_source: str) -> tuple[dict[str, str], dict[str, Network]]:
        regions: dict[str, str] = {}
        networks: dict[str, Network] = {}
        if not isinstance(spec, dict) or not spec:
            raise self.fail("region_groups", "must be a non-empty mapping")
        for group, body in spec.items():
            where = f"region_groups.{group}"
            body = self.mapping(body, where, _GROUP_KEYS, ("regions", "egress_gb"))
            src = self.source(body["source"], f"{where}.source") if "source" in body else file_source
            if not isinstance(body["regions"], list):
                raise self.fail(f"{where}.regions", "must be a list")
            for region in body["regions"]:
                key = str(region).lower()
                if key in regions:
                    raise self.fail(f"{where}.regions", f"{region!r} is already in group {regions[key]!r}")
                regions[key] = group
            ratio = body.get("free_egress_ratio")
            over = body.get("egress_over_ratio_gb")
            networks[group] = Network(
                egress_gb=self.number(body["egress_gb"], f"{where}.egress_gb", src)[0],
                free_egress_ratio=None if ratio is None else self.number(ratio, f"{where}.free_egress_ratio", src)[0],
                egress_over_ratio_gb=None if over is None else self.number(over, f"{where}.egress_over_ratio_gb",
                                                                           src)[0],
            )
            self.network_sources[group] = {
                name: self._figure_source(body[name], src) for name in
                ("egress_gb", "free_egress_ratio", "egress_over_ratio_gb") if body.get(name) is not None
            }
        return regions, networks

    def _figure_source(self, value: Any, default: str) -> str:
        return value["source"] if isinstance(value, dict) else default

    def classes(self, spec: Any, networks: dict[str, Network], ctx: dict) -> dict[tuple[str, str], ClassPrice]:
        known = KNOWN_CLASSES[ctx["kind"]]
        if not isinstance(spec, dict):
            raise self.fail("classes", "must be a mapping")
        names = {("" if k == DEFAULT_CLASS_KEY else k): k for k in spec}
        unknown = sorted(str(names[n]) for n in names if n not in known)
        if unknown:
            raise self.fail("classes", f"unknown storage class(es) {', '.join(unknown)} for {ctx['kind']} "
                                       f"(known: {', '.join(k or DEFAULT_CLASS_KEY for k in known)})")
        absent = [k or DEFAULT_CLASS_KEY for k in known if k not in names]
        if absent:
            raise self.fail("classes", f"missing storage class(es) {', '.join(absent)}")
        parsed: dict[tuple[str, str], dict] = {}
        for cls in known:
            key = names[cls]
            body = self.mapping(spec[key], f"classes.{key}", _PRICE_KEYS | {"prices"}, ("prices",))
            prices = self.mapping(body["prices"], f"classes.{key}.prices", set(networks), tuple(networks))
            for group in networks:
                where = f"classes.{key}.prices.{group}"
                block = self.mapping(prices[group], where, _PRICE_KEYS)
                parsed[(group, cls)] = self.class_fields(body, block, where, ctx)
                parsed[(group, cls)]["sources"] = MappingProxyType(
                    dict(parsed[(group, cls)]["sources"]) | self.network_sources[group])
        out = {}
        for (group, cls), fields in parsed.items():
            ref = fields.pop("overhead_billed_as")
            where = f"classes.{names[cls]}.overhead_billed_as"
            if fields["overhead_standard_bytes"] and ref not in known:
                raise self.fail(where, f"must name a storage class of {ctx['kind']} when overhead_standard_bytes > 0")
            rate = parsed[(group, ref)]["storage_gb_month"] if fields["overhead_standard_bytes"] else Decimal(0)
            out[(group, cls)] = ClassPrice(provider=ctx["kind"], region_group=group, storage_class=cls,
                                           gb_bytes=ctx["gb"], effective_date=ctx["effective"],
                                           overhead_standard_gb_month=rate, network=networks[group], **fields)
        return out

    def class_fields(self, body: dict, block: dict, where: str, ctx: dict) -> dict[str, Any]:
        merged = {k: v for k, v in body.items() if k != "prices"} | block
        for key in _REQUIRED_PRICE_KEYS:
            if key not in merged:
                raise self.fail(f"{where}.{key}", "missing required field")
        class_src = self.source(body["source"], f"{where}.source") if "source" in body else ctx["file_source"]
        block_src = self.source(block["source"], f"{where}.source") if "source" in block else class_src
        sources: dict[str, str] = {}

        def num(key: str, default: int = 0, *, integer: bool = False) -> Decimal:
            if key not in merged:  # not charged / no such rule: the class's page is the source
                sources[key] = class_src
                return Decimal(default)
            value, sources[key] = self.number(merged[key], f"{where}.{key}", block_src if key in block else class_src,
                                              integer=integer)
            return value

        fields: dict[str, Any] = {
            "storage_gb_month": num("storage_gb_month"), "write_per_1000": num("write_per_1000"),
            "read_per_1000": num("read_per_1000"), "transition_per_1000": num("transition_per_1000"),
            "monitoring_per_1000_objects": num("monitoring_per_1000_objects"),
        }
        for key in ("min_storage_days", "min_object_bytes", "overhead_class_bytes", "overhead_standard_bytes",
                    "monitoring_min_object_bytes"):
            fields[key] = int(num(key, integer=True))
        rule = merged.get("early_deletion", "remaining_days" if fields["min_storage_days"] else "none")
        if rule not in EARLY_DELETION_RULES:
            raise self.fail(f"{where}.early_deletion", f"must be one of {', '.join(EARLY_DELETION_RULES)}")
        if (rule == "none") != (fields["min_storage_days"] == 0):
            raise self.fail(f"{where}.early_deletion", "must be remaining_days exactly when min_storage_days > 0")
        fields["early_deletion"] = rule
        fields["overhead_billed_as"] = merged.get("overhead_billed_as", "")
        sub_src = block_src if "sub_tiers" in block else class_src
        fields["sub_tiers"], fields["sub_tier_default"] = self.named_figures(
            merged, "sub_tiers", "sub_tier_default", where, sub_src, sources, optional=True)
        fields["retrieval"], fields["retrieval_default"] = self.retrieval(
            merged, where, block_src if "retrieval" in block else class_src, sources)
        fields["sources"] = MappingProxyType(sources)
        return fields

    def named_figures(self, merged: dict, key: str, default_key: str, where: str, src: str, sources: dict,
                      *, optional: bool) -> tuple[Mapping[str, Decimal], str]:
        spec = merged.get(key)
        if spec is None and optional:
            return MappingProxyType({}), ""
        if not isinstance(spec, dict) or not spec:
            raise self.fail(f"{where}.{key}", "must be a non-empty mapping")
        values = {}
        for name, raw in spec.items():
            values[str(name)], sources[f"{key}.{name}"] = self.number(raw, f"{where}.{key}.{name}", src)
        default = merged.get(default_key, next(iter(values)) if len(values) == 1 else None)
        if default not in values:
            raise self.fail(f"{where}.{default_key}", f"must name one of {', '.join(values)}")
        return MappingProxyType(values), default

    def retrieval(self, merged: dict, where: str, src: str, sources: dict) -> tuple[Mapping[str, RetrievalTier], str]:
        spec = merged["retrieval"]
        if not isinstance(spec, dict) or not spec:
            raise self.fail(f"{where}.retrieval", "must be a non-empty mapping of tiers")
        tiers = {}
        for name, body in spec.items():
            at = f"{where}.retrieval.{name}"
            body = self.mapping(body, at, _TIER_KEYS, ("per_gb", "per_1000", "hours"))
            tier_src = self.source(body["source"], f"{at}.source") if "source" in body else src
            values = {}
            for field in ("per_gb", "per_1000", "hours"):
                values[field], sources[f"retrieval.{name}.{field}"] = self.number(
                    body[field], f"{at}.{field}", tier_src)
            tiers[str(name)] = RetrievalTier(name=str(name), **values)
        default = merged.get("retrieval_default", next(iter(tiers)) if len(tiers) == 1 else None)
        if default not in tiers:
            raise self.fail(f"{where}.retrieval_default", f"must name one of {', '.join(tiers)}")
        return MappingProxyType(tiers), default

    def plan(self, name: str, spec: Any, ctx: dict) -> FlatPlan:
        where = f"plans.{name}"
        body = self.mapping(spec, where, _PLAN_KEYS, ("seat_month", "min_seats"))
        src = self.source(body["source"], f"{where}.source") if "source" in body else ctx["file_source"]
        sources: dict[str, str] = {}
        tb = 1000 * ctx["gb"]

        def num(key: str, *, integer: bool = False) -> Decimal | None:
            if body.get(key) is None:
                return None
            value, sources[key] = self.number(body[key], f"{where}.{key}", src, integer=integer)
            return value

        def size(key: str, unit: int) -> int | None:
            value = num(key)
            return None if value is None else int(value * unit)

        min_seats = int(num("min_seats", integer=True))  # type: ignore[arg-type]
        if min_seats < 1:
            raise self.fail(f"{where}.min_seats", "must be at least 1")
        return FlatPlan(
            provider=ctx["kind"], name=name, seat_month=num("seat_month"),  # type: ignore[arg-type]
            min_seats=min_seats, included_bytes=size("included_tb", tb),
            bytes_per_extra_seat=size("tb_per_extra_seat", tb) or 0, max_bytes=size("max_tb", tb),
            max_file_bytes=size("max_file_gb", ctx["gb"]),
            bandwidth_bytes_per_seat_month=size("bandwidth_tb_per_seat_month", tb),
            effective_date=ctx["effective"], sources=MappingProxyType(sources),
        )
