"""The audit log as people read it: filters and keyset paging (query), what a row shows
(present), and the CSV (export). Plain functions over ``AuditEntry``; the views only call them."""
from .export import csv_lines
from .query import PAGE_SIZE, AuditFilters, AuditPage, Cursor, ParsedQuery, parse, read_page

__all__ = ["PAGE_SIZE", "AuditFilters", "AuditPage", "Cursor", "ParsedQuery", "csv_lines", "parse", "read_page"]
