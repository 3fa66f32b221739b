"""Where messages come in: the MQTT and serial sources, and the pipeline that decodes,
validates and hands each message to the durable buffer."""
