# Sensor drivers: one module per chip, written from the datasheets.
