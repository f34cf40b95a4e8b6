"""Every limit on reading an input file, in one place: sizes, rows, cells, cell length, raster cells.

The readers check them while reading (before a decompressor or a spreadsheet library expands anything
it need not), so a hostile or mistaken file is refused in seconds with a message that names the limit;
a notebook passes its own :class:`ReadingLimits` as ``limits=`` to any reader. The README's input
section tabulates the defaults (:func:`limits_markdown`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from planning.errors import FileTooLargeError, ParameterError


@dataclass(frozen=True)
class ReadingLimits:
    """Limits applied while reading one input file.

    Attributes
    ----------
    max_file_bytes : int
        The file itself, bytes (200 MiB).
    uncompressed_factor : int
        A zipped shapefile may expand to this many times ``max_file_bytes`` (its members' declared sizes,
        checked before extracting; a member longer than declared is refused while copying).
    max_xlsx_uncompressed_bytes : int
        An XLSX workbook's members together, uncompressed, bytes (256 MiB: about 350,000 rows of a
        17-column pharmacy sheet), checked from the zip directory before the workbook is opened.
    max_rows : int
        Rows of a CSV or XLSX sheet, or features of a geo file (500,000), counted while reading.
    max_cells : int
        Cells (rows x columns as read) of a table (10,000,000), counted while reading.
    max_cell_chars : int
        Characters in one cell (32,767, Excel's own limit): a longer cell rejects its row (listed,
        the cell cut short in the rejected table); the file is still read.
    max_raster_cells : int
        Cells of a population raster (20,000,000).
    """

    max_file_bytes: int = 200 * 2**20
    uncompressed_factor: int = 4
    max_xlsx_uncompressed_bytes: int = 256 * 2**20
    max_rows: int = 500_000
    max_cells: int = 10_000_000
    max_cell_chars: int = 32_767
    max_raster_cells: int = 20_000_000

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"读取上限 {f.name} 必须是正整数：{value!r}",
                                     f"reading limit {f.name} must be a positive integer: {value!r}")

    @property
    def max_uncompressed_bytes(self) -> int:
        """A zipped shapefile's members together, uncompressed, bytes."""
        return self.uncompressed_factor * self.max_file_bytes

    def with_max_bytes(self, max_bytes: int | None) -> ReadingLimits:
        """These limits with ``max_file_bytes`` set to ``max_bytes`` (unchanged when None): the readers'
        ``max_bytes=`` argument."""
        return self if max_bytes is None else dataclasses.replace(self, max_file_bytes=int(max_bytes))

    def check_rows(self, name: str, rows: int, cells: int) -> None:
        """Raise :class:`FileTooLargeError` once ``rows`` or ``cells`` read so far pass their limit."""
        if rows > self.max_rows:
            raise FileTooLargeError(f"{name} 超过 {self.max_rows:,} 行的上限：请分成几个文件，或只保留需要的行",
                                    f"{name} has more than {self.max_rows:,} rows (the limit): split it, or keep "
                                    f"only the rows needed")
        if cells > self.max_cells:
            raise FileTooLargeError(f"{name} 超过 {self.max_cells:,} 个单元格的上限（行数 × 列数）：请删去不需要的列或行",
                                    f"{name} has more than {self.max_cells:,} cells (rows x columns, the limit): "
                                    f"delete the columns or rows not needed")

    def check_uncompressed(self, name: str, total: int, limit: int) -> None:
        """Raise :class:`FileTooLargeError` when an archive's declared uncompressed ``total`` passes ``limit``."""
        if total > limit:
            raise FileTooLargeError(f"{name} 解压后为 {total / 2**20:,.0f} MB，超过 {limit / 2**20:,.0f} MB 的上限",
                                    f"{name} uncompresses to {total / 2**20:,.0f} MB, more than the limit of "
                                    f"{limit / 2**20:,.0f} MB")


#: The limits every reader uses unless given others.
DEFAULT_LIMITS = ReadingLimits()


def limits_markdown(limits: ReadingLimits = DEFAULT_LIMITS) -> str:
    """The limits as a Markdown table (for the README)."""

    def size(n: int) -> str:
        return f"{n / 2**20:,.0f} MiB"

    rows = [
        ("file size", "`max_file_bytes`", size(limits.max_file_bytes), "the file is refused"),
        ("zipped shapefile, uncompressed", "`uncompressed_factor` x file size",
         size(limits.max_uncompressed_bytes), "refused from the zip directory, before extracting"),
        ("XLSX, uncompressed", "`max_xlsx_uncompressed_bytes`", size(limits.max_xlsx_uncompressed_bytes),
         "refused from the zip directory, before the workbook is opened"),
        ("rows (CSV, XLSX sheet, geo file features)", "`max_rows`", f"{limits.max_rows:,}",
         "refused while reading, at the first row past the limit"),
        ("cells (rows x columns)", "`max_cells`", f"{limits.max_cells:,}", "refused while reading"),
        ("characters in one cell", "`max_cell_chars`", f"{limits.max_cell_chars:,}",
         "the row is rejected (`cell_too_long`), the rest is read"),
        ("population raster cells", "`max_raster_cells`", f"{limits.max_raster_cells:,}", "the raster is refused"),
    ]
    lines = ["| what | setting (`ReadingLimits`) | default | beyond it |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)
