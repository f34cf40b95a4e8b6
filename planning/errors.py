"""Domain exceptions with a bilingual (Chinese / English) message a planner can act on."""

from __future__ import annotations

from planning.text import Text


class PlanningError(ValueError):
    """Base class: a problem with the user's input, never a bug in the tool.

    ``str(err)`` gives "中文说明 / English explanation"; the parts are kept in
    ``err.message_zh`` and ``err.message_en`` so a UI can show one language.
    """

    def __init__(self, message_zh: str, message_en: str):
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{message_zh} / {message_en}")

    def message(self, lang: str = "zh") -> str:
        """The message in one language (``"zh"`` or ``"en"``)."""
        return Text(self.message_zh, self.message_en).get(lang)


class NetworkInputError(PlanningError):
    """A street-network input cannot be read or holds no walkable street."""


class SchemaError(PlanningError):
    """A table or GeoDataFrame lacks a required column or has a wrong value type."""


class ParameterError(PlanningError):
    """A parameter (speed, minutes, width, ...) is out of its allowed range."""


class IngestError(PlanningError):
    """An input file (pharmacies, boundaries, population, fund status) cannot be read as given."""


class FileTypeError(IngestError):
    """The file type is not one the reader accepts (judged from the file name, else the content)."""


class MissingColumnError(IngestError, SchemaError):
    """A required column is absent; the message names it and lists the accepted header names."""


class EmptyFileError(IngestError):
    """The file holds no data row (or no feature)."""


class EncodingError(IngestError):
    """The text is neither UTF-8 nor GBK/GB18030 (nor the encoding given)."""


class EmptyLayerError(IngestError):
    """Every row of an input layer was rejected (or none could be placed): nothing is left to plan with.

    The message names the layer, its file and the commonest rejection reasons with an example row.
    """


class UnreadableFileError(IngestError):
    """The file is damaged or not what its name says (a corrupt workbook, a broken shapefile...)."""


class FileTooLargeError(IngestError):
    """The file, or an archive's uncompressed content, exceeds the size limit."""


class ArchiveError(IngestError):
    """A zip archive holds no shapefile, several without a choice, or an incomplete one."""


class UnsafeArchiveError(ArchiveError):
    """A zip archive member has an absolute path, a '..' component or is a link: it is not read."""


class CoordinateSystemError(IngestError):
    """A layer has no coordinate system and its coordinates are not longitude/latitude."""
