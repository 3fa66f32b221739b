"""``device list-ports``: serial ports that may be boards, with their USB ids."""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

from devices import catalogue


@dataclass(frozen=True)
class PortInfo:
    device: str
    vid: int | None
    pid: int | None
    description: str
    boards: tuple[str, ...]

    @property
    def usb_id(self) -> str:
        if self.vid is None or self.pid is None:
            return "-"
        return f"{self.vid:04X}:{self.pid:04X}"


def candidate_ports(include_all: bool = False) -> list[PortInfo]:
    """USB serial ports (all ports with ``include_all``), marked with matching boards."""
    out = []
    for p in sorted(list_ports.comports(), key=lambda p: str(p.device)):
        if p.vid is None and not include_all:
            continue
        out.append(PortInfo(str(p.device), p.vid, p.pid, str(p.description or ""),
                            tuple(catalogue.boards_for_usb(p.vid, p.pid))))
    return out


def format_ports(ports: list[PortInfo]) -> str:
    if not ports:
        return ("no USB serial ports found (plug the board in with a data cable; "
                "--all lists every serial port)")
    rows = [("PORT", "USB ID", "BOARD", "DESCRIPTION")]
    rows += [(p.device, p.usb_id, ",".join(p.boards) or "?", p.description) for p in ports]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in rows)
