"""The fast path of reading a dataset file: a well-formed file parsed straight into its types.

Most files need nothing from cleaning but its checks.  For those, pyarrow parses every column
as the manifest's type (numbers as float64 with the placeholder as missing, flags as booleans,
the binary label as an integer) and the checks run on whole Arrow columns, so the first load
costs about as much as a plain parse.

Anything this path does not expect makes it give up and return ``None``: a header that needs
cleaning, text or a blank where a number belongs, a flag that is not T/F, NaN or infinity, a
class name that is not in the dataset's list, a label that is not 0/1, a missing value in a
column whose type is inferred.  The general path (:func:`idsbench.data.io.clean_table`) then
reads the file again and reports each of these with line numbers and examples.  Both paths
give the same table and the same quality report; ``tests/test_typed_read.py`` holds them equal.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from idsbench.data.manifest import Manifest

log = logging.getLogger(__name__)

#: spellings of a flag the fast path parses (the general path also strips spaces and
#: ignores case, so these are the common ones, not the whole set)
TRUE_SPELLINGS = ("T", "t", "true", "True", "TRUE", "1", "yes", "Yes", "YES", "y", "Y")
FALSE_SPELLINGS = ("F", "f", "false", "False", "FALSE", "0", "no", "No", "NO", "n", "N")


#: names of unnamed index columns, which cleaning drops
UNNAMED = re.compile(r"^(unnamed: ?\d+|index|)$", re.IGNORECASE)


class _Unusual(Exception):
    """The file needs the general path; the message says why (logged at debug level)."""


def kept_columns(manifest: Manifest, columns: list[str]) -> list[str]:
    """The columns a cleaned table keeps, in order: required, free text, other never-features."""
    keep = manifest.required_columns() + [c for c in manifest.text if c in columns] + \
        [c for c in manifest.never_features
         if c in columns and c not in manifest.targets.values()]
    return list(dict.fromkeys(keep))


def numeric_columns(manifest: Manifest) -> list[str]:
    """Columns cleaned as numbers, in the order the general path cleans (and reports) them."""
    return list(manifest.numeric) + [c for c in manifest.identity
                                     if c not in manifest.identity_categorical]


def string_columns(manifest: Manifest, columns: list[str]) -> list[str]:
    """Columns cleaned as text: categories, categorical identity columns, free text."""
    return list(manifest.categorical) + list(manifest.identity_categorical) + \
        [c for c in manifest.text if c in columns]


def _read_options(n_bytes: int) -> pv.ReadOptions:
    """Blocks of a quarter of each core's share of the file (at least pyarrow's 1 MiB): the
    parse keeps every core busy, and the per-block checks below loop over few blocks."""
    return pv.ReadOptions(block_size=max(1 << 20, n_bytes // (4 * (os.cpu_count() or 1))))


def header_line(data: bytes) -> bytes:
    """The first line of CSV bytes, without its line end."""
    end = data.find(b"\n")
    return data[:end if end >= 0 else len(data)].rstrip(b"\r")


def header_names(data: bytes) -> list[str]:
    """The names in the header line as written (a leading BOM removed), or [] if unreadable.

    pyarrow skips a UTF-8 byte-order mark too, so these are the names the parse sees.
    """
    try:
        return next(csv.reader([header_line(data).decode("utf-8-sig")]), [])
    except (UnicodeDecodeError, csv.Error):
        return []


def read_typed(path: Path, data: bytes, manifest: Manifest,
               parsed: Callable[[], None] | None = None) -> tuple[pa.Table, dict] | None:
    """The cleaned table of a well-formed file (Arrow; ``to_pandas`` gives the data frame the
    general path gives), and the placeholder counts and class renames for the report.

    Returns ``None`` when the file needs the general path (see the module's docstring): a
    file with bad values never takes this path, so the bad-value policy plays no part here.
    ``parsed`` is called once the parse (which keeps every core busy) is over.
    """
    try:
        return _read_typed(data, manifest, parsed or (lambda: None))
    except _Unusual as why:
        log.debug("%s: general reading path (%s)", path, why)
        return None


def _read_typed(data: bytes, manifest: Manifest,
                parsed: Callable[[], None]) -> tuple[pa.Table, dict]:
    if b'"' in header_line(data):
        raise _Unusual("quoted header")
    names = header_names(data)
    clean = [n.strip() for n in names]
    if clean != names or len(set(names)) != len(names) or any(map(UNNAMED.match, names)):
        raise _Unusual("header needs cleaning")
    missing = set(manifest.required_columns()) - set(names)
    if missing:
        raise _Unusual(f"missing columns {sorted(missing)}")
    keep = kept_columns(manifest, names)
    numbers, flags = numeric_columns(manifest), list(manifest.boolean)
    strings = string_columns(manifest, names)
    bin_col, multi_col = manifest.targets["binary"], manifest.targets["multiclass"]
    types = {c: pa.float64() for c in numbers}
    types.update({c: pa.bool_() for c in flags})
    types.update({c: pa.string() for c in strings + [multi_col]})
    types[bin_col] = pa.int64()

    convert = pv.ConvertOptions(
        column_types=types, include_columns=keep, null_values=[manifest.placeholder],
        strings_can_be_null=False, true_values=list(TRUE_SPELLINGS),
        false_values=list(FALSE_SPELLINGS))
    try:
        table = pv.read_csv(pa.py_buffer(data), read_options=_read_options(len(data)),
                            convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise _Unusual(f"typed parse failed: {str(exc).splitlines()[0]}") from None
    parsed()
    if table.num_rows == 0:
        raise _Unusual("no data rows")

    # inferred columns (row ids, time stamps) must read as the general path reads them: there
    # the placeholder stays text, here it would be a missing value
    for name in set(keep) - set(types):
        col = table.column(name)
        if col.null_count or not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                                  or pa.types.is_string(col.type)):
            raise _Unusual(f"column {name!r} inferred as {col.type} with missing values")

    placeholders = {}  # in the order the general path records them: numbers, then flags
    columns = {}
    for name in numbers:
        col = table.column(name)
        finite = pc.is_finite(col)  # null where the placeholder was
        if pc.any(pc.invert(finite)).as_py():
            raise _Unusual(f"NaN or infinity in {name!r}")
        if col.null_count:
            placeholders[name] = col.null_count
    for name in flags:
        col = table.column(name)
        if col.null_count:
            placeholders[name] = col.null_count
        columns[name] = pc.cast(col, pa.float64())
    for name in strings:
        col = table.column(name)
        padded, blank = _edges(col)
        if padded:
            col = pc.utf8_trim_whitespace(col)
            blank = pc.any(pc.equal(col, "")).as_py()
        if blank:
            col = pc.if_else(pc.equal(col, ""), manifest.placeholder, col)
        if padded or blank:
            columns[name] = col

    label = table.column(bin_col)
    if label.null_count or not pc.all(pc.is_in(label, pa.array([0, 1]))).as_py():
        raise _Unusual(f"{bin_col!r} is not all 0/1")
    classes, renames = _normalise_classes(table.column(multi_col), manifest)
    columns[multi_col] = classes
    attack = pc.not_equal(classes, manifest.normal_class)
    if not pc.all(pc.equal(attack, pc.equal(label, 1))).as_py():
        raise _Unusual(f"{bin_col!r} and {multi_col!r} disagree")

    for name, col in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, col)
    table = table.select(keep)
    return table, {"placeholders": placeholders, "class_renames": renames}


def _suspect(edge_bytes: np.ndarray) -> bool:
    """Whether any byte may belong to whitespace: a space or control byte (Python's str.strip
    also removes 28-31), or a byte of a multi-byte character (a Unicode space, perhaps)."""
    return bool(((edge_bytes <= 0x20) | (edge_bytes >= 0x80)).any())


def _edges(col: pa.ChunkedArray) -> tuple[bool, bool]:
    """Whether any value may start or end with whitespace, and whether any value is blank.

    Costs a fraction of trimming every value: a block whose bytes hold nothing that may be
    whitespace is passed over whole (most category columns), and in the others only the first
    and last byte of each value are looked at.  A column that may need trimming is then trimmed
    by pyarrow.  (A blank value lends its neighbours' bytes as its own edges: at worst a column
    is trimmed for nothing.)
    """
    blank = len(col) > 0 and pc.min(pc.binary_length(col)).as_py() == 0
    for chunk in col.chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        if data_buf is None or data_buf.size == 0:
            continue
        data = np.frombuffer(data_buf, dtype=np.uint8)
        if not _suspect(data):
            continue
        offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(chunk) + 1,
                                offset=4 * chunk.offset)
        if _suspect(np.take(data, offsets[:-1], mode="clip")) \
                or _suspect(np.take(data, offsets[1:] - 1, mode="clip")):
            return True, blank
    return False, blank


def _normalise_classes(col: pa.ChunkedArray, manifest: Manifest) -> tuple[pa.ChunkedArray, dict]:
    """Class names mapped to the canonical list (spaces, case, aliases), as the general path."""
    canonical = manifest.classes["multiclass"]
    lookup = {c.lower(): c for c in canonical}
    lookup.update({k.lower(): v for k, v in manifest.class_aliases.items()})
    seen = pc.unique(col).to_pylist()
    mapped, renames = [], {}
    for name in seen:
        key = " ".join(name.split()).lower()
        if key not in lookup:
            raise _Unusual(f"class {name!r} not in the dataset's list")
        mapped.append(lookup[key])
        if lookup[key] != name:
            renames[name] = lookup[key]
    if not renames:
        return col, renames
    index = pc.index_in(col, value_set=pa.array(seen, pa.string()))
    return pc.take(pa.array(mapped, pa.string()), index), renames
