"""What the store does not hold: sensor kinds' datasheets and quantities' definitions.

A small neutral table of this package (``gateway/`` does not import
``devices/``): the store's ``sensor`` tag is the sensor kind, and a station's
``sensors`` string lists kinds. A kind or quantity missing here (a site's own)
still gets a Sensor / ObservedProperty, with a generic description.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["KINDS", "QUANTITY_DEFS", "SensorKind", "kind_of", "quantity_def"]

QUDT = "http://qudt.org/vocab/quantitykind/"


class SensorKind(NamedTuple):
    description: str
    #: the datasheet or product page (Sensor ``metadata``, encodingType text/html)
    datasheet: str
    #: the quantities this kind reports (declared Datastreams of a station)
    quantities: tuple[str, ...]


KINDS: dict[str, SensorKind] = {
    "scd41": SensorKind("Sensirion SCD41: photoacoustic NDIR CO2 sensor with temperature and "
                        "humidity", "https://sensirion.com/products/catalog/SCD41",
                        ("co2", "temperature", "humidity")),
    "sht4x": SensorKind("Sensirion SHT4x: digital temperature and relative humidity sensor",
                        "https://sensirion.com/products/catalog/SHT40",
                        ("temperature", "humidity")),
    "bme280": SensorKind("Bosch BME280: temperature, humidity and barometric pressure",
                         "https://www.bosch-sensortec.com/products/environmental-sensors/"
                         "humidity-sensors-bme280/", ("temperature", "humidity", "pressure")),
    "pms5003": SensorKind("Plantower PMS5003: laser-scattering particle counter (PM1.0, PM2.5, "
                          "PM10 mass concentrations)", "https://www.plantower.com/en/",
                          ("pm1_0", "pm2_5", "pm10")),
    "bh1750": SensorKind("ROHM BH1750FVI: digital ambient light sensor (illuminance)",
                         "https://www.rohm.com/products/sensors-mems/ambient-light-sensor-ics/"
                         "bh1750fvi-product", ("illuminance",)),
    "veml7700": SensorKind("Vishay VEML7700: high-accuracy ambient light sensor",
                           "https://www.vishay.com/en/product/84286/", ("illuminance",)),
    "yfs201": SensorKind("YF-S201: hall-effect water flow meter (pulse output)", "",
                         ("flow_rate", "volume")),
}

#: quantity -> (description, definition URI)
QUANTITY_DEFS: dict[str, tuple[str, str]] = {
    "co2": ("Carbon dioxide mole fraction in air", QUDT + "MoleFraction"),
    "temperature": ("Air temperature", QUDT + "Temperature"),
    "humidity": ("Relative humidity of air", QUDT + "RelativeHumidity"),
    "pressure": ("Barometric (atmospheric) pressure", QUDT + "AtmosphericPressure"),
    "pm1_0": ("Mass concentration of particulate matter below 1.0 um", QUDT + "MassConcentration"),
    "pm2_5": ("Mass concentration of particulate matter below 2.5 um", QUDT + "MassConcentration"),
    "pm10": ("Mass concentration of particulate matter below 10 um", QUDT + "MassConcentration"),
    "tvoc": ("Total volatile organic compounds, mole fraction", QUDT + "MoleFraction"),
    "illuminance": ("Illuminance", QUDT + "Illuminance"),
    "cct": ("Correlated colour temperature of the light", QUDT + "ThermodynamicTemperature"),
    "flow_rate": ("Water volume flow rate", QUDT + "VolumeFlowRate"),
    "volume": ("Water volume through the meter", QUDT + "Volume"),
    "water_temperature": ("Water temperature", QUDT + "Temperature"),
}


def kind_of(kind: str) -> SensorKind:
    return KINDS.get(kind) or SensorKind(f"sensor kind {kind} (a site's own)", "", ())


def quantity_def(quantity: str) -> tuple[str, str]:
    return QUANTITY_DEFS.get(quantity) or (f"{quantity} (a site's own quantity)",
                                           f"urn:livinglab:quantity:{quantity}")
