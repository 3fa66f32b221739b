"""Running the gateway as a service: health and metrics, retained status, sd_notify, the
systemd unit and ``livinglab doctor``."""
