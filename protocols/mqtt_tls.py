"""One TLS setup for every MQTT client of the project, taken from the config.

Why one place: the gateway, the console, ``fleet update``, the fleet monitor,
``doctor``, the demo and provisioning all talk to the same broker. When each of
them read ``[mqtt] ca_file`` its own way, ``tls = true`` with no ``ca_file`` (the
documented ``broker certs`` flow) made two of them connect in plain text to port
8883 and send their password in clear. Every client now asks :func:`client_tls`
and gets either ``None`` (the config has no TLS) or a verified context: the
broker's chain must end at the site CA and name ``[mqtt] host``. No fallback to
plain text and no "insecure" switch.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config

__all__ = ["MqttTlsError", "client_tls", "tls_context"]


class MqttTlsError(ConfigError):
    """The TLS files named in ``[mqtt]`` cannot be used (one line, with the fix)."""


def tls_context(ca_file: Path | None, cert_file: Path | None = None,
                key_file: Path | None = None) -> ssl.SSLContext:
    """A verified client context: ``ca_file`` (None: the system CAs), an optional
    client certificate and key, TLS 1.2 at least, host name checked."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(ca_file) if ca_file else None)
        if cert_file:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except FileNotFoundError as exc:
        raise MqttTlsError(f"[mqtt] TLS file {exc.filename} not found (run livinglab broker "
                           "certs, or fix [mqtt] ca_file)") from None
    except (ssl.SSLError, OSError) as exc:
        raise MqttTlsError(f"[mqtt] TLS files unusable: {exc} (point [mqtt] ca_file at the "
                           "CA certificate, PEM)") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_tls(cfg: Config) -> ssl.SSLContext | None:
    """The context every MQTT client of this config uses; None: plain MQTT.

    TLS is on with ``[mqtt] tls = true``, a ``ca_file`` or a client ``cert_file``;
    the CA is ``[mqtt] ca_file``, else the one ``broker certs`` made under
    ``data_dir`` (:attr:`Config.mqtt_ca_file`)."""
    ca = cfg.mqtt_ca_file
    if ca is None and cfg.mqtt.cert_file is None:
        return None
    return tls_context(ca, cfg.mqtt.cert_file, cfg.mqtt.key_file)
