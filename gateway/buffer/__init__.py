"""The durable buffer: accepted points, the dedup record and the quarantine in one SQLite
file, committed before any MQTT ack (see ``core``)."""
