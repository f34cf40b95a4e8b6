"""Walking-access planning of designated retail pharmacies (医保定点零售药店).

The library behind the Streamlit app, the CLI and the notebooks: records (:mod:`planning.model`),
the walking network (:mod:`planning.network`), walk times per service (:mod:`planning.access`) and
service-circle polygons (:mod:`planning.isochrones`).
"""

from planning.model import Region, Service

__all__ = ["Region", "Service"]
__version__ = "0.1.0"
