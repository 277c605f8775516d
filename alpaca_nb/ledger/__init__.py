"""The managed-order ledger: every order alpaca_nb places, kept in a DuckDB file.

One public class, :class:`Ledger` (in :mod:`.store`; :class:`LedgerRead` is what its
``reading()`` yields), over these parts:

- :mod:`.schema`: the tables and their migrations;
- :mod:`.file`: the DuckDB file, attached for one unit of work at a time, processes taking turns;
- :mod:`.rows`: an order or event as a checked row (what fits each column);
- :mod:`.ingest`: the broker's order JSON and trade updates as row changes (never going backwards);
- :mod:`.journal`: the write-ahead journal beside the file, drained into DuckDB in batches;
- :mod:`.replay`: applying a journal batch, a record that cannot be applied set aside alone;
- :mod:`.rejects`: what is set aside, and :meth:`Ledger.health`.
"""

from .store import (
    SCOPE,
    DuplicateOrderError,
    Ledger,
    LedgerHealth,
    LedgerRead,
    SetAside,
    UnfitValueError,
    UpsertResult,
    default_ledger_path,
)

# Shown (and documented) as alpaca_nb.ledger.Ledger, the path users import it from.
for _public in (Ledger, LedgerRead, UpsertResult, LedgerHealth, SetAside):
    _public.__module__ = __name__
del _public

__all__ = [
    "Ledger",
    "LedgerRead",
    "UpsertResult",
    "SCOPE",
    "default_ledger_path",
    "DuplicateOrderError",
    "UnfitValueError",
    "LedgerHealth",
    "SetAside",
]
