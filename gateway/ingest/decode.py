"""Decode, the pure step of the pipeline: a batch of raw messages -> buffer items.

Topic parsing, validation (telemetry and status), the batch's own duplicates, the
rejection reports and the delivery-accounting events, with no I/O, so the whole
step can be tested (and fuzzed) without a broker or a buffer. See
:mod:`gateway.ingest.pipeline` for the shell around it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from gateway.accounting.delivery import Event, readable_key
from gateway.accounting.lastseen import Sighting
from gateway.ingest.isolate import quarantine_row
from gateway.ingest.message import Message
from protocols.errors import TopicError
from protocols.lineprotocol import with_info
from protocols.quantities import BUILTIN, Registry
from protocols.topics import TopicInfo, parse_topic
from protocols.validate import Accepted, MessageKey, Rejection, validate_telemetry
from protocols.validate_status import validate_status

STATUS_BOOT = -1
DELIVERY_BOOT = -2  # the buffer item holding ``delivery`` points (seq = flush time in ms)


@dataclass
class Decoded:
    """What one batch of raw messages becomes; built by :func:`decode`."""

    accepted: list[Accepted] = field(default_factory=list)
    #: the reports, bounded per message; the raw payload with the first of a message
    rejected: list[tuple[Rejection, bytes]] = field(default_factory=list)
    #: one row per rejected message (wire contract: one quarantine row per message)
    quarantine: list[tuple[Rejection, bytes]] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    batch_duplicates: int = 0
    telemetry_messages: int = 0
    #: one per telemetry message and ``offline`` status, for the delivery accounting
    deliveries: list[Event] = field(default_factory=list)


def decode(msgs: Sequence[Message], site: str, prefix: str,
           registry: Registry = BUILTIN, account: bool = False,
           serial_ids: Mapping[str, AbstractSet[str]] | None = None) -> Decoded:
    """Pure: classify and validate each message against the site's quantity ``registry``.
    Never raises for bad input.

    ``account``: also list the delivery :class:`~gateway.delivery.Event`s.
    ``serial_ids``: serial port -> the device ids it may speak for (a line from a
    mapped port for another id is ``port_not_allowed``, and not accounted: it is not
    that device's message)."""
    out = Decoded()
    seen_keys: set[MessageKey] = set()
    telemetry_seen: dict[str, float] = {}  # latest per device: one Sighting each, not per message
    for msg in msgs:
        info = _topic(msg.topic, prefix)
        if isinstance(info, TopicError):
            out.kinds["bad_topic"] += 1
            _reject(out, Rejection(msg.topic, None, "bad_topic", info.why), msg.payload)
            continue
        out.kinds[info.kind] += 1
        if info.site != site or info.device is None or info.kind not in ("telemetry", "status"):
            out.ignored += 1  # other sites, config, our own status/rejected reports
            continue
        if msg.port and serial_ids:
            allowed = serial_ids.get(msg.port)
            if allowed is not None and info.device not in allowed:
                _reject(out, Rejection(msg.topic, info.device, "port_not_allowed", (
                    f"serial port {msg.port} may speak for {', '.join(sorted(allowed))} only "
                    "([gateway.serial_ids])")[:200]), msg.payload)
                continue
        if info.kind == "telemetry":
            out.telemetry_messages += 1
            outcome = validate_telemetry(msg.topic, msg.payload, site, msg.received_at,
                                         info.device, registry, encode=True)
            # the raw payload is quarantined once per message, not once per rejected value
            if outcome.rejections:
                out.rejected.extend((r, msg.payload if i == 0 else b"")
                                    for i, r in enumerate(outcome.rejections))
                out.quarantine.append((quarantine_row(outcome.rejections), msg.payload))
            acc = outcome.accepted
            if acc is None and account:
                boot, seq = readable_key(msg.payload)
                out.deliveries.append(Event(info.device, msg.received_at, "rejected", boot, seq))
            if acc is not None:
                key = (acc.device, acc.boot, acc.seq)
                if key in seen_keys:
                    out.batch_duplicates += 1
                    if account:
                        out.deliveries.append(Event(info.device, msg.received_at, "duplicate",
                                                    acc.boot, acc.seq))
                    continue
                seen_keys.add(key)
                if account:
                    out.deliveries.append(Event(info.device, msg.received_at, "accepted",
                                                acc.boot, acc.seq))
                out.accepted.append(acc)
                at = telemetry_seen.get(info.device)
                if at is None or at < msg.received_at:
                    telemetry_seen[info.device] = msg.received_at
        else:
            record, rejection = validate_status(msg.topic, msg.payload, site, msg.received_at,
                                                info.device)
            if rejection is not None:
                _reject(out, rejection, msg.payload)
            if record is not None and account and record.state == "offline":
                out.deliveries.append(Event(record.device, msg.received_at, "offline"))
            if record is not None:
                seq = int(round(msg.received_at * 1000))
                key = (record.device, STATUS_BOOT, seq)
                if key not in seen_keys:
                    seen_keys.add(key)
                    out.accepted.append(Accepted(device=record.device, boot=STATUS_BOOT,
                                                 seq=seq, points=with_info(record.point)))
                out.sightings.append(Sighting(record.device, msg.received_at, "status",
                                              state=record.state, fields=dict(record.fields)))
    out.sightings.extend(Sighting(d, at, "telemetry") for d, at in telemetry_seen.items())
    return out


_TOPICS: dict[tuple[str, str], TopicInfo | TopicError] = {}


def _topic(topic: str, prefix: str) -> TopicInfo | TopicError:
    """:func:`parse_topic`, remembered: a site's devices send on the same few topics
    all day. Bounded (cleared when full), so a stream of made-up topics costs memory
    only up to the bound."""
    key = (topic, prefix)
    info = _TOPICS.get(key)
    if info is None:
        try:
            info = parse_topic(topic, prefix)
        except TopicError as exc:
            info = exc.with_traceback(None)  # kept without the frames it was raised in
        if len(_TOPICS) >= 8192:
            _TOPICS.clear()
        _TOPICS[key] = info
    return info


def _reject(out: Decoded, rejection: Rejection, payload: bytes) -> None:
    """A message rejected with one report: reported and quarantined."""
    out.rejected.append((rejection, payload))
    out.quarantine.append((rejection, payload))
