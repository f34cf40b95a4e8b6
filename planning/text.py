"""Bilingual text: one ``Text(zh, en)`` type, the only place that chooses between Chinese and English.

Every label, reason and message the tool shows a planner is a :class:`Text`; callers say which language
they want (``"zh"``, the default, or ``"en"``) and never compare language codes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The languages of every user-facing text, the first the default.
LANGUAGES = ("zh", "en")


def check_lang(lang: str) -> str:
    """``lang`` when it is one of :data:`LANGUAGES`, else a ``ValueError`` (a programming error: every
    entry point offers only these languages)."""
    if lang not in LANGUAGES:
        raise ValueError(f"不支持的语言“{lang}”（可用：zh、en） / unsupported language {lang!r} (use zh or en)")
    return lang


@dataclass(frozen=True)
class Text:
    """One text in Chinese and English."""

    zh: str
    en: str

    def get(self, lang: str = "zh") -> str:
        """The text in ``lang`` (``"zh"`` or ``"en"``)."""
        return self.zh if check_lang(lang) == "zh" else self.en

    def format(self, **values) -> Text:
        """Both languages formatted with ``values`` (``str.format`` fields)."""
        return Text(self.zh.format(**values), self.en.format(**values))

    @classmethod
    def parse(cls, both: str) -> Text:
        """A text written ``"中文 / English"`` (the form of notes and error messages); one part only: both."""
        zh, _, en = both.partition(" / ")
        return cls(zh, en or zh)

    def both(self) -> str:
        """Chinese and English together, ``"中文 / English"`` (logs and error messages)."""
        return f"{self.zh} / {self.en}"


def join(texts, lang: str = "zh") -> str:
    """Several texts as a list written in ``lang``: ``甲、乙`` or ``a, b``."""
    return ("、" if check_lang(lang) == "zh" else ", ").join(t.get(lang) for t in texts)
