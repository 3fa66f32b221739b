# Firmware version; equals firmware.FW_VERSION on the CPython side.
FW_VERSION = "0.1.0"
