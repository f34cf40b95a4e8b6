"""Embedded data: the fictional demo region (demo/) and policy presets."""
