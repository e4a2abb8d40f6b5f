"""Which endpoints a provider may point at: never link-local or cloud-metadata addresses (a stored key sent there
is a stolen key), and private or loopback ones only where ``WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS`` says so (the
local fleet of ``make run`` and the tests)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}
# Cloud metadata services outside the link-local range (AWS over IPv6, Alibaba in carrier-grade NAT space).
METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in all but name


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # unresolvable now: the connection check (or the first upload) says so
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def endpoint_problem(url: str, *, allow_private: bool | None = None) -> str:
    """Why ``url`` may not be a provider's endpoint, or "" when it may."""
    if not url:
        return ""
    allow_private = settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS if allow_private is None else allow_private
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the endpoint must be an http(s) URL with a host"
    host = parts.hostname.rstrip(".").lower()
    if host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service, not a storage endpoint"
    for address in _addresses(host):
        if address in METADATA_ADDRESSES:
            return f"{host} resolves to {address}, a cloud metadata service"
        if address.version == 4 and address in SHARED and not allow_private:
            return f"{host} resolves to {address}, a shared (carrier-grade NAT) address"
        if address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved:
            return f"{host} resolves to {address}, a link-local, metadata or reserved address"
        if (address.is_private or address.is_loopback) and not allow_private:
            return (f"{host} resolves to {address}, a private address (set WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS=1 for "
                    "servers on your own network)")
    return ""
