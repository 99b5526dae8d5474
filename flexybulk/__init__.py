"""flexybulk: issue Flexybox gift certificates in bulk from a spreadsheet.

The package is a library with a thin Click CLI on top (``flexybulk.cli``).
Modules, one responsibility each:

- ``sheet``     read XLSX/XLSM/ODS/XLS/CSV/TSV into rows that keep their sheet row numbers
- ``values``    parse single cells: amounts (Decimal), quantities, emails, phones, postal codes
- ``validate``  rows + catalogue -> orders and row problems (pure functions)
- ``client``    ``FlexyboxClient``, the only module that talks HTTP
- ``journal``   the SQLite ledger of every batch, row, id and step
- ``issue``     runs rows through the vendor's flow (customer -> sales order -> commit)
- ``results``   what the result and validation sheets hold (rows, typed columns, Summary, Needs attention)
- ``writers``   writes them as XLSX or CSV, atomically (XlsxWriter builds the workbook)
- ``cells``     the big tables' XLSX cells: values, looks, widths, row heights
- ``sandbox``   a local emulator of the three Flexybox hosts, for tests and dry runs
"""

__version__ = "0.1.0"
