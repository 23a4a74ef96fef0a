"""Receipts as words and lines in Chroma (an example application)."""
