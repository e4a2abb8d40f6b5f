"""Residency zones: where a wedding's data may live, derived from countries and provider regions."""

from __future__ import annotations

EU = "EU"
US = "US"
NONE = "none"
ZONES = [(EU, "EU / EEA"), (US, "United States"), (NONE, "No restriction")]

# EU members, the rest of the EEA, plus CH and GB, whose data-protection regimes are treated as EU-equivalent here.
EU_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO CH GB".split()
)

# Region names that are in Europe, per provider naming. Azure names have no prefix, so list them.
_EU_PREFIXES = ("eu",)  # eu-west-1, eu-central-003, europe-west1, EU multi-region
_AZURE_EU = frozenset(
    "northeurope westeurope francecentral francesouth germanywestcentral germanynorth swedencentral swedensouth "
    "norwayeast norwaywest switzerlandnorth switzerlandwest uksouth ukwest italynorth polandcentral spaincentral "
    "austriaeast belgiumcentral".split()
)
_US_PREFIXES = ("us-", "us_", "us", "eastus", "westus", "centralus", "northcentralus", "southcentralus",
                "westcentralus")


def zone_for_country(country_code: str) -> str:
    code = (country_code or "").strip().upper()
    if code in EU_COUNTRIES:
        return EU
    if code == "US":
        return US
    return NONE


def zone_for_region(region: str) -> str:
    """The zone a provider region lies in; unknown regions are in no zone (never EU/US compliant)."""
    name = (region or "").strip().lower()
    if not name:
        return NONE
    if name in _AZURE_EU or name.startswith(_EU_PREFIXES):
        return EU
    if name.startswith(_US_PREFIXES):
        return US
    return NONE


def region_allowed(wedding_zone: str, region_zone: str) -> bool:
    """A wedding restricted to a zone may only use regions in that zone."""
    return wedding_zone in (NONE, region_zone)
