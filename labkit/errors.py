"""Errors that name the file and the record at fault."""

from __future__ import annotations


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


class DataError(LabkitError, ValueError):
    """Bad input data. The message names the file and, where there is one, the record.

    ``source`` is the file (or a description of the in-memory object), ``record`` the id or
    line number of the offending record.
    """

    def __init__(self, message: str, *, source: str | None = None, record: object | None = None):
        self.source = source
        self.record = record
        where = []
        if source is not None:
            where.append(str(source))
        if record is not None:
            where.append(f"record {record}")
        prefix = f"{': '.join(where)}: " if where else ""
        super().__init__(prefix + message)
