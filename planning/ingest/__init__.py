"""Read a planner's own files into the model's layers, keeping every input row: clean or rejected with a reason.

Readers (each returns an :class:`IngestResult`; ``counts in = clean + rejected``, always)
    :func:`read_pharmacies`      CSV (UTF-8, GBK/GB18030, UTF-16), XLSX, GeoJSON, GPKG, zipped shapefile
    :func:`read_boundaries`      county or sub-district polygons: GeoJSON, GPKG, zipped shapefile
    :func:`read_population`      population per sub-district: CSV, XLSX
    :func:`read_fund_status`     county fund status (rules B3, B4): CSV, XLSX
    :func:`read_population_grid` a population raster (GeoTIFF) or weighted points, as points with ``persons``
    :func:`read_buildings`       residential building footprints, with ``persons`` per building
    :func:`read_workers`         where people work: workplaces (points or areas) or workers per sub-district
:func:`build_region` assembles a :class:`planning.model.Region` from them (or straight from files), joining
pharmacies to boundaries, sub-districts to counties and population to sub-districts, and fills
``Region.rejected`` with every row that did not make it.

Row numbers
    ``row`` is the row number the planner sees in Excel for CSV/XLSX (the header row counts, so with
    the header on the first line the first data row is row 2), and the feature number (first
    feature = 1) for GeoJSON, GPKG and shapefiles.

Column names, accepted values and defaults are tabulated by :func:`columns_markdown` (docs/INPUT_FORMATS.md).
Coordinates are converted to WGS84 with :mod:`planning.coords`; every layer is returned in EPSG:4326.

Safety: nothing read is executed or unpickled (no pickle, no formulas evaluated: XLSX cells give their
cached values; a formula without one rejects its row), files, archive contents, rows, cells and cell
lengths have limits checked while reading (:class:`ReadingLimits`), and zipped shapefiles are read from a
private temporary folder into which only the shapefile's own parts are copied under fixed names.
GDAL is always told which driver to use, so a renamed file cannot select another format.

What is where (each module imports only the ones above it)
    :mod:`.vocabulary`  :class:`Reason` and :class:`Note` (bilingual texts), :data:`FIELD_ALIASES` and the
                        accepted yes/no, service and kind words, :func:`columns_markdown`, the cell parsers
                        (:func:`parse_flag`, :func:`parse_services`, :func:`parse_number`,
                        :func:`parse_coordinate`, :func:`infer_kind`) and code/name keys
    :mod:`.limits`      :class:`ReadingLimits`: every limit on reading a file (sizes, rows, cells, cell
                        length), :data:`DEFAULT_LIMITS`
    :mod:`.result`      :class:`IngestResult`, and the per-row problem and note bookkeeping behind it
    :mod:`.sources`     loading paths, bytes and uploads (size limits, type detection), CSV/XLSX rows and
                        header finding, geo files through GDAL, safe extraction of zipped shapefiles,
                        reprojection to lon/lat (:data:`DEFAULT_MAX_BYTES`, :data:`Source`)
    :mod:`.checks`      header -> field mapping and the row checks every reader shares (blank rows,
                        required text, duplicate ids, yes/no and number cells, point coordinates)
    :mod:`.readers`     the ``read_*`` functions and their layer-specific checks (services, attributes,
                        polygons, kinds, population values, rasters, building floor areas)
    :mod:`.datum`       :func:`decide_datum` (the pharmacy datum from street fit and address names),
                        :class:`DatumMismatchError`
    :mod:`.osm_boundaries` :func:`read_osm_boundaries` (admin_level 6/8 relations of an OSM file)
    :mod:`.region`      :func:`build_region` (county, population, fund and pharmacy linking, the
                        ``Region.rejected`` table), :class:`IngestWarning`
"""

from planning.ingest.readers import (
    DEFAULT_M2_PER_PERSON, DEFAULT_MAX_CELLS, FUND_COLUMNS, INTEGER_FIELDS, PHARMACY_DEFAULTS, read_boundaries,
    read_buildings, read_fund_status, read_pharmacies, read_population, read_population_grid, read_workers,
)
from planning.ingest.datum import DatumMismatchError, decide_datum
from planning.ingest.osm_boundaries import OsmBoundaries, read_osm_boundaries
from planning.ingest.region import OSM_BOUNDARIES, IngestWarning, build_region, population_from_points, rejected_table
from planning.ingest.result import IngestResult
from planning.ingest.limits import DEFAULT_LIMITS, ReadingLimits, limits_markdown
from planning.ingest.sources import DEFAULT_MAX_BYTES, HEADER_SCAN_ROWS, UNCOMPRESSED_FACTOR, Source
from planning.ingest.vocabulary import (
    FALSE_VALUES, FIELD_ALIASES, INVALID, KIND_VALUES, SERVICE_WORDS, TRUE_VALUES, Layer, Note, Reason,
    columns_markdown, infer_kind, parse_coordinate, parse_flag, parse_number, parse_services,
)

__all__ = [
    "OSM_BOUNDARIES", "population_from_points", "DEFAULT_LIMITS", "ReadingLimits", "limits_markdown", "rejected_table", "DatumMismatchError", "decide_datum", "OsmBoundaries", "read_osm_boundaries",
    "DEFAULT_M2_PER_PERSON", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_CELLS", "FALSE_VALUES", "FIELD_ALIASES",
    "FUND_COLUMNS", "HEADER_SCAN_ROWS", "INTEGER_FIELDS", "INVALID", "KIND_VALUES", "PHARMACY_DEFAULTS",
    "SERVICE_WORDS", "TRUE_VALUES", "UNCOMPRESSED_FACTOR", "IngestResult", "IngestWarning", "Layer", "Note",
    "Reason", "Source", "build_region", "read_workers", "columns_markdown", "infer_kind",
    "parse_coordinate", "parse_flag", "parse_number", "parse_services", "read_boundaries", "read_buildings",
    "read_fund_status", "read_pharmacies", "read_population", "read_population_grid",
]
