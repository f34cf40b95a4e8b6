"""What a reader made of one file (IngestResult), and the bookkeeping of row problems and notes behind it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from planning import coords
from planning.text import Text
from planning.completeness import DatumDecision, label
from planning.errors import EmptyLayerError
from planning.ingest.vocabulary import Note, Reason, cell_text


# ======================================================================================= result
@dataclass(frozen=True)
class IngestResult:
    """What a reader made of one file.

    Attributes
    ----------
    layer : str
        "pharmacies", "subdistricts", "counties", "population", "fund_status", "population_points"
        or "buildings".
    source : str
        The file name shown in reports.
    clean : DataFrame or GeoDataFrame
        Accepted rows, indexed by their input row number (see the module docstring), in EPSG:4326.
    rejected : DataFrame
        One row per rejected input row: ``source``, ``row``, ``reason_code`` (a :class:`Reason` value,
        the first problem found), ``reason`` (every problem, "中文 / English"), then the raw cells.
    notes : DataFrame
        Repairs and defaults applied to kept rows, and file-level remarks (``row`` 0): ``source``,
        ``row``, ``note_code``, ``note``.
    n_in : int
        Input rows read: always ``len(clean) + len(rejected)``.
    datum : coords.Datum
        The declared coordinate system the coordinates were converted from.
    mapping : dict
        Field -> header of the file it was read from.
    datum_decision : DatumDecision, optional
        For pharmacies: how ``datum`` was chosen (declared, or decided by the data) and the evidence.
    """

    layer: str
    source: str
    clean: pd.DataFrame
    rejected: pd.DataFrame
    notes: pd.DataFrame
    n_in: int
    datum: coords.Datum = coords.Datum.WGS84
    mapping: dict[str, str] = field(default_factory=dict)
    datum_decision: DatumDecision | None = None

    def __post_init__(self) -> None:
        if self.n_in != len(self.clean) + len(self.rejected):
            raise AssertionError(f"{self.layer}: {self.n_in} rows in, {len(self.clean)} clean + "
                                 f"{len(self.rejected)} rejected")

    @property
    def n_clean(self) -> int:
        return len(self.clean)

    @property
    def n_rejected(self) -> int:
        return len(self.rejected)

    def require_rows(self) -> IngestResult:
        """This result when it kept a row; an :class:`~planning.errors.EmptyLayerError` naming the layer,
        the file and the commonest rejection reasons when every row was rejected."""
        if self.n_clean:
            return self
        telling = self.notes[(self.notes["row"] == 0) & self.notes["note_code"].isin(_EXPLAINING_NOTES)]
        file_notes = [n for n in telling["note"] if n]
        raise emptied_layer_error(self.layer, self.source, self.n_in, self.rejected, notes=file_notes)

    def note_lines(self, limit: int = 5) -> list[str]:
        """The notes as "中文 / English" lines for people: file-level notes as written, then row notes by
        kind, at most ``limit`` rows of each kind written out ("第 3 行：几何无效……已修复") and the rest counted."""
        if self.notes.empty:
            return []
        lines = [n for n in self.notes.loc[self.notes["row"] == 0, "note"] if n]
        rows = self.notes[self.notes["row"] != 0]
        for _code, group in rows.groupby("note_code", sort=False):
            for row, note in zip(group["row"].head(limit), group["note"].head(limit)):
                text = Text.parse(note)
                lines.append(Text(f"第 {row} 行：{text.zh}", f"row {row}: {text.en}").both())
            if len(group) > limit:
                lines.append(Text(f"另有 {len(group) - limit} 行同类说明", f"{len(group) - limit} more row(s) "
                                  f"with the same kind of note").both())
        return lines

    def summary(self, lang: str = "zh") -> str:
        """One line: rows read, kept and rejected."""
        return Text(f"{self.source}：读入 {self.n_in} 行，导入 {self.n_clean} 行，拒绝 {self.n_rejected} 行",
                    f"{self.source}: {self.n_in} rows read, {self.n_clean} kept, {self.n_rejected} rejected").get(lang)


#: File notes that can explain why every row was rejected (a column not used, another layer, a guessed CRS).
_EXPLAINING_NOTES = (Note.COLUMN_IGNORED.value, Note.LAYER_CHOSEN.value, Note.CRS_ASSUMED.value, Note.BOM_OVER_GBK.value)


def emptied_layer_error(layer: str, source: str, n_in: int, rejected: pd.DataFrame, *,
                        top: int = 3, notes: Iterable[str] = ()) -> EmptyLayerError:
    """The error for a layer none of whose ``n_in`` rows is usable: its name and file, and the ``top``
    commonest rejection reasons (``rejected`` has ``reason_code``, ``row`` and ``reason`` columns), each
    with its count and the first row's full reason; then the reader's file-level ``notes`` ("中文 / English",
    e.g. a second 经度 column not used), which often say why."""
    parts_zh, parts_en = [], []
    if len(rejected):
        counts = rejected["reason_code"].value_counts(sort=True)
        for code, count in counts.head(top).items():
            first = rejected[rejected["reason_code"] == code].iloc[0]
            example = Text.parse(str(first["reason"]))
            parts_zh.append(f"{code} {count} 行（如第 {int(first['row'])} 行：{example.zh}）")
            parts_en.append(f"{code} x{count} (e.g. row {int(first['row'])}: {example.en})")
        if len(counts) > top:
            parts_zh.append(f"另有 {len(counts) - top} 种原因")
            parts_en.append(f"{len(counts) - top} more reason(s)")
    said = [Text.parse(n) for n in notes]
    where = f"（{source}）" if source else ""
    return EmptyLayerError(
        f"{label(layer, 'zh')}{where}没有可用的行：读入 {n_in} 行，全部被拒绝。最常见的原因：" + "；".join(parts_zh or ["—"])
        + ("。说明：" + "；".join(t.zh for t in said) if said else ""),
        f"{label(layer, 'en')}{f' ({source})' if source else ''} has no usable row: {n_in} read, all rejected. "
        f"Commonest reasons: " + "; ".join(parts_en or ["—"]) + (". Notes: " + "; ".join(t.en for t in said) if said else ""))


class RowProblems:
    """Problems found per input row; a row with any problem is rejected."""

    def __init__(self, rows: pd.Index):
        self.rows = rows
        self._found: dict[int, list[tuple[Reason, str]]] = {}

    def add(self, row: int, reason: Reason, **detail: Any) -> None:
        found = self._found.setdefault(int(row), [])
        if not (found and found[0][0] is Reason.EMPTY_ROW):  # an empty row needs no further explanation
            found.append((reason, reason.text(**detail)))

    def add_all(self, where: Iterable[int], reason: Reason, **detail: Any) -> None:
        for row in where:
            self.add(row, reason, **detail)

    def has(self, row: int) -> bool:
        return int(row) in self._found

    @property
    def bad(self) -> np.ndarray:
        return np.fromiter((int(r) in self._found for r in self.rows), dtype=bool, count=len(self.rows))

    def frame(self, raw: pd.DataFrame, source: str) -> pd.DataFrame:
        """The rejected table: source, row, reason_code, reason, raw cells as text."""
        rows = [r for r in raw.index if int(r) in self._found]
        head = pd.DataFrame({
            "source": source,
            "row": np.asarray(rows, dtype=np.int64),
            "reason_code": [self._found[int(r)][0][0].value for r in rows],
            "reason": [_join_texts([t for _, t in self._found[int(r)]]) for r in rows],
        })
        cells = raw.loc[rows].map(cell_text) if len(raw.columns) else pd.DataFrame(index=rows)
        cells.columns = [c if c not in head.columns else f"{c} (raw)" for c in cells.columns]
        return pd.concat([head, cells.reset_index(drop=True)], axis=1)


def _join_texts(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    zh, en = zip(*(t.split(" / ", 1) for t in texts))
    return f"{'；'.join(zh)} / {'; '.join(en)}"


class RowNotes:
    def __init__(self, source: str):
        self.source = source
        self.items: list[dict[str, Any]] = []

    def add(self, row: int, note: Note, **detail: Any) -> None:
        self.items.append({"source": self.source, "row": int(row), "note_code": note.value,
                           "note": note.text(**detail)})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.items, columns=["source", "row", "note_code", "note"])

