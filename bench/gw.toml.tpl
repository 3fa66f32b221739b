# Gateway config for benchmarks: influxdb1 store (influxd 1.6, or VictoriaMetrics' /write).
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
kind = "influxdb1"
url = "${STORE_URL}"
database = "${STORE_DB}"
