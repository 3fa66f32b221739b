"""``livinglab sensorthings``: a read-only OGC SensorThings API v1.1 over the shared store.

Everything is read through the centre reader (:mod:`gateway.stores.centre`); the
mapping from the store's points to SensorThings entities is in
``docs/sensorthings.md``. Modules: ``ids`` (entity ids), ``catalogue`` (sensor
kinds and quantity definitions), ``graph`` (the small entity sets), ``options``
(query options), ``filters`` ($filter evaluation and its store window),
``observations`` (streamed, cursor-paged observations), ``render`` / ``resolve``
(JSON and URL paths), ``app`` / ``server`` / ``cli`` (the web service).
"""
