"""How long a certificate has left: one doctor line, shared by ``livinglab doctor``
(the gateway host's CA and broker certificate) and ``provisioning.tls``.

It lives in the gateway package because the gateway host is what it checks, and
``provisioning`` imports downward from here, never the other way.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

__all__ = ["WARN_DAYS", "cert_expiry_check"]

Level = Literal["ok", "warn", "fail"]
WARN_DAYS = 30  # a month's notice: enough to renew before devices start refusing


def cert_expiry_check(path: Path, now: dt.datetime | None = None,
                      warn_days: int = WARN_DAYS) -> tuple[Level, str, str]:
    """One doctor line for a certificate file: (level, what, fix).

    ``fail`` when unreadable, expired or not yet valid; ``warn`` within
    ``warn_days`` of expiry; ``ok`` otherwise.
    """
    from cryptography import x509  # here: every command loads this module, few check certs

    now = now or dt.datetime.now(dt.UTC)
    renew = "renew: livinglab broker certs --hosts ... (keeps the CA), then restart mosquitto"
    try:
        data = path.read_bytes()
        cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except (OSError, ValueError) as exc:
        return ("fail", f"certificate {path} unreadable: {exc}",
                "run livinglab broker certs, or fix the path")
    end = cert.not_valid_after_utc
    left = end - now
    when = end.strftime("%Y-%m-%d")
    if left.total_seconds() <= 0:
        return "fail", f"certificate {path} expired on {when}", renew
    if cert.not_valid_before_utc > now:
        return ("fail", f"certificate {path} not valid before "
                        f"{cert.not_valid_before_utc:%Y-%m-%d}",
                "check this host's clock, or re-issue with livinglab broker certs")
    if left.days < warn_days:
        return "warn", f"certificate {path} expires in {left.days} days ({when})", renew
    return "ok", f"certificate {path} valid until {when} ({left.days} days)", ""
