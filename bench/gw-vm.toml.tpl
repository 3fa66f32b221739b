# Gateway config for benchmarks: VictoriaMetrics through the influxdb2 store (/api/v2/write).
# Rendered by bench/run.py and by ../shared/peers/bench.py --consumer-config:
# ${MQTT_PORT} ${STORE_URL} ${STORE_DB} ${RUN_DIR} ${CONSUMER_HTTP_PORT} are filled in.
site = "bdnc-lab"

[gateway]
id = "gw-bench"
data_dir = "${RUN_DIR}/gateway-data"
health_port = ${CONSUMER_HTTP_PORT}

[mqtt]
host = "127.0.0.1"
port = ${MQTT_PORT}
client_id = "livinglab-bench-gw"

[store]
kind = "influxdb2"
url = "${STORE_URL}"
bucket = "${STORE_DB}"
org = "livinglab"
token = "bench"
