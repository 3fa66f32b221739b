"""One-command gateway benchmark: ``python -m bench [--quick]``.

Drives the gateway (or the stand-in consumer) through a real Mosquitto into a
real store and prints, from one run, the broker's own ceiling, live end-to-end
ingest, backlog drain, paced latency and the gateway's RSS. Benchmarks print
figures; they are never timed assertions in the test suite.
"""
