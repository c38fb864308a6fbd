"""Themes and tone of the open-feedback texts (see model.py for the interface)."""
