"""Funder outcome summaries: built once (:mod:`.build`), rendered as CSV, XLSX or PDF."""
