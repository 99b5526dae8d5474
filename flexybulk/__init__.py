"""flexybulk: issue Flexybox gift certificates in bulk from a spreadsheet.

The package is a library with two faces over one core: ``batches`` holds the
use cases (check, prepare, run, status, history, template) and every rule about
money; ``cli`` (and the web page) only translate to and from it. Modules:

- ``batches``   the batch use cases, returning plain dataclasses
- ``target``    where a batch goes: settings, ledger name, the in-process sandbox
- ``reading``   read XLSX/XLSM/XLSB/ODS/XLS/CSV/TSV into rows that keep their sheet row numbers
- ``validate``  rows + catalogue -> orders and row problems (pure functions)
- ``client``    ``FlexyboxClient``, the only module that talks HTTP
- ``journal``   the SQLite ledger of every batch, row, id and step
- ``planning``  a batch's ids and a decision per row, recorded before any call
- ``records``   what a recorded row means: totals, fingerprint, words
- ``issue``     runs rows through the vendor's flow
- ``outcome``   what a failed call means for a row
- ``adoption``  rebuilding a batch from its result sheet
- ``results``   what the result and validation sheets hold (rows, typed columns, Summary, Needs attention)
- ``writers``   writes them as XLSX or CSV, atomically (XlsxWriter builds the workbook)
- ``output_sheet``  the shapes those sheets are written from (rows kept as columns)
- ``output_cells``  the big tables' XLSX cells: values, looks, widths, row heights
- ``output_layout``  a big table's columns laid out whole, then sliced per chunk of rows
- ``output_zip``  the XLSX package, its big sheets deflated in pieces on threads
- ``result_input``  a result sheet given back as input (retry)
- ``cli``       the command line
- ``sandbox``   a local emulator of the three Flexybox hosts, for tests and dry runs
"""

__version__ = "0.1.0"
