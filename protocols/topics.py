"""MQTT topics of the contract: one parser and one builder per topic kind.

Device ids can never start with ``_``, so ``{site}/_gateway/...`` cannot be confused
with ``{site}/{device}/...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import TopicError
from .ids import is_id

DEFAULT_PREFIX = "livinglab/v1"
GATEWAY_LEVEL = "_gateway"

TopicKind = Literal["telemetry", "status", "config", "gateway_status", "rejected"]
_DEVICE_KINDS: dict[str, TopicKind] = {
    "telemetry": "telemetry", "status": "status", "config": "config"}
_GATEWAY_KINDS: dict[str, TopicKind] = {"status": "gateway_status", "rejected": "rejected"}


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What a topic names. ``device`` is set for device topics, ``gateway`` for gateway ones."""

    kind: TopicKind
    site: str
    device: str | None
    gateway: str | None


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> TopicInfo:
    """Classify ``topic``; raise :class:`TopicError` for anything the contract does not name."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        raise TopicError(topic, f"does not start with {head!r}")
    levels = topic[len(head):].split("/")
    if len(levels) == 3 and levels[2] in _DEVICE_KINDS:
        site, device, leaf = levels
        _check(topic, "site", site)
        _check(topic, "device", device)
        return TopicInfo(_DEVICE_KINDS[leaf], site, device, None)
    if len(levels) == 4 and levels[1] == GATEWAY_LEVEL and levels[3] in _GATEWAY_KINDS:
        site, _, gateway, leaf = levels
        _check(topic, "site", site)
        _check(topic, "gateway", gateway)
        return TopicInfo(_GATEWAY_KINDS[leaf], site, None, gateway)
    raise TopicError(
        topic, "expected {site}/{device}/(telemetry|status|config) or "
        "{site}/_gateway/{gateway}/(status|rejected) after the prefix")


def _check(topic: str, what: str, value: str) -> None:
    if not is_id(value):
        raise TopicError(topic, f"{what} {value!r} is not an id ([a-z0-9][a-z0-9-]{{0,62}})")


def _build(prefix: str, *levels: tuple[str, str]) -> str:
    for what, value in levels:
        _check(f"{prefix}/...", what, value)
    return "/".join((prefix.rstrip("/"), *(v for _, v in levels)))


def telemetry_topic(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/{site}/{device}/telemetry``: device -> gateway readings."""
    return _build(prefix, ("site", site), ("device", device)) + "/telemetry"


def status_topic(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/{site}/{device}/status``: retained birth message and last will."""
    return _build(prefix, ("site", site), ("device", device)) + "/status"


def config_topic(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/{site}/{device}/config``: retained device config."""
    return _build(prefix, ("site", site), ("device", device)) + "/config"


def gateway_status_topic(site: str, gateway: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/{site}/_gateway/{gateway}/status``: retained gateway health."""
    return _build(prefix, ("site", site)) + f"/{GATEWAY_LEVEL}/" + _gw(prefix, gateway) + "/status"


def rejected_topic(site: str, gateway: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/{site}/_gateway/{gateway}/rejected``: one report per rejection."""
    return (_build(prefix, ("site", site)) + f"/{GATEWAY_LEVEL}/" + _gw(prefix, gateway)
            + "/rejected")


def site_filter(site: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/{site}/#``: everything a gateway serving ``site`` subscribes to."""
    return _build(prefix, ("site", site)) + "/#"


def _gw(prefix: str, gateway: str) -> str:
    _check(f"{prefix}/...", "gateway", gateway)
    return gateway
