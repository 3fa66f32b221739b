"""What the data teams get: delivery reports and exports (CSV, Parquet, data package).

Reads the store through ``gateway.stores.make_reader`` and the gateway's delivery
accounting through ``gateway.accounting``; never the gateway's running internals.
"""

from .errors import ExportError
from .export import export

__all__ = ["ExportError", "export"]
