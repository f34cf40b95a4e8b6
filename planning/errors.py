"""Domain exceptions with a bilingual (Chinese / English) message a planner can act on."""

from __future__ import annotations


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
        return self.message_zh if lang == "zh" else self.message_en


class NetworkInputError(PlanningError):
    """A street-network input cannot be read or holds no walkable street."""


class SchemaError(PlanningError):
    """A table or GeoDataFrame lacks a required column or has a wrong value type."""


class ParameterError(PlanningError):
    """A parameter (speed, minutes, width, ...) is out of its allowed range."""
