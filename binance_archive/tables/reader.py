"""One stored zip read into typed record batches: verified against its sidecar's digest, its header row detected,
its times made microseconds, its rows checked against the file's period, deduplicated and sorted where its data
type needs it. Runs in a worker thread (pyarrow parses and converts without the GIL).

The CSV is streamed a block at a time, so memory stays bounded whatever the file's size; the data types whose rows
must be deduplicated (metrics, liquidationSnapshot) come in small files and are read whole.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from binance_archive.core.files import ArchiveFile
from binance_archive.core.periods import Period, month_end
from binance_archive.core.schemas import ColumnType, TableSchema
from binance_archive.tables.arrow import TIMESTAMP_UNIT, TIMEZONE, arrow_schema, csv_types, int_scalar

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BLOCK_SIZE", "ConversionError", "FileFacts", "OutOfOrder", "read_batches"]

BLOCK_SIZE = 4 * 1024 * 1024
"""Bytes of CSV parsed at a time (a record batch each) where a file is streamed."""
WHOLE_UP_TO = 32 * 1024 * 1024
"""A CSV up to this size is inflated into memory and parsed whole, on every core; a larger one is streamed, a block
at a time, so that memory stays bounded whatever the file's size."""
_MICROSECONDS_FROM = 10**14
"""An integer time this large or larger counts microseconds (1973-03-03 in µs; the year 5138 in ms)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TRUE = ["true", "True", "TRUE"]
_FALSE = ["false", "False", "FALSE"]
_TEXT_TIME = "%Y-%m-%d %H:%M:%S"
_DATE = "%Y-%m-%d"
_PEEK = 64 * 1024


@attrs.define
class ConversionError(Exception):
    """A file that cannot become a table: what is wrong with it, and where (``line`` is 1-based, header included)."""

    key: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line is not None else ""
        return f"{self.key}{where}: {self.reason}"


class OutOfOrder(Exception):
    """A row of a file streamed in order came before the one it follows: read the file again, whole, and sort it."""


@attrs.define
class FileFacts:
    """What reading a file found: its data rows, the rows dropped as exact duplicates, its CSV's size."""

    rows: int = 0
    duplicates: int = 0
    csv_bytes: int = 0
    header: bool = False
    empty: bool = False
    """No data row at all (an empty file, or a header row alone): an empty table."""


def read_batches(
    path: str, file: ArchiveFile, schema: TableSchema, expected_sha256: str, facts: FileFacts, *, whole: bool = False
) -> Iterator[pa.RecordBatch]:
    """The table's record batches of the zip at ``path`` (the stored copy of ``file``), filling in ``facts``.

    A file of a type whose rows must be sorted is streamed as long as its rows come in order; at the first that does
    not, :class:`OutOfOrder` is raised, and the caller reads it again with ``whole``: whole, and sorted.

    Raises:
        ConversionError: the stored bytes do not match ``expected_sha256`` (the stored sidecar's digest), the zip is
            broken (its CRC included), the CSV has a row that does not fit the schema, a header row of another
            shape, or a time outside the file's period.
    """
    content = _verified(path, file, expected_sha256)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content) if content is not None else path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConversionError(file.key, f"not a readable zip: {exc}") from None
    with archive:
        member = _member(archive, file)
        facts.csv_bytes = member.file_size
        csv_bytes = _inflated(archive, member, file) if member.file_size <= WHOLE_UP_TO else None
        facts.header = _has_header(archive, member, file, schema, facts, csv_bytes)
        if facts.empty:
            return
        batches = _Batches(archive, member, file, schema, facts, csv_bytes)
        if schema.dedupe or schema.sort:
            yield from batches.ordered(whole=whole)
        else:
            yield from batches.as_read()


def _verified(path: str, file: ArchiveFile, expected: str) -> bytes | None:
    """Check the stored zip against its sidecar's digest; its bytes, where it is small enough to keep in memory
    (then it is read once, not twice)."""
    digest = hashlib.sha256()
    content = None
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size <= WHOLE_UP_TO:
                content = handle.read()
                digest.update(content)
            else:
                while chunk := handle.read(1024 * 1024):
                    digest.update(chunk)
    except OSError as exc:
        raise ConversionError(file.key, f"cannot read the stored zip: {exc.strerror or exc}") from None
    if digest.hexdigest() != expected:
        raise ConversionError(
            file.key, f"the stored zip's SHA-256 {digest.hexdigest()} does not match its sidecar's {expected}"
        )
    return content


@contextlib.contextmanager
def _unzipping(file: ArchiveFile) -> Iterator[None]:
    """A read of the zip's member: a broken zip (its CRC included, checked at the member's end) as ConversionError."""
    try:
        yield
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ConversionError(file.key, f"a broken zip: {exc}") from None


def _inflated(archive: zipfile.ZipFile, member: zipfile.ZipInfo, file: ArchiveFile) -> bytes:
    """The member's bytes, its CRC checked."""
    with _unzipping(file):
        return archive.read(member)


def _member(archive: zipfile.ZipFile, file: ArchiveFile) -> zipfile.ZipInfo:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1:
        names = ", ".join(m.filename for m in members) or "nothing"
        raise ConversionError(file.key, f"a zip of the archive holds one CSV file, this one holds {names}")
    return members[0]


def _has_header(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    file: ArchiveFile,
    schema: TableSchema,
    facts: FileFacts,
    csv_bytes: bytes | None,
) -> bool:
    """Whether the file starts with a header row, from its first line (never from its date); notes in ``facts``
    whether it holds no data row at all."""
    if csv_bytes is not None:
        head = csv_bytes[:_PEEK]
    else:
        with _unzipping(file), archive.open(member) as stream:
            head = stream.read(_PEEK)
    first, _, rest = head.partition(b"\n")
    line = first.decode("utf-8", "replace").lstrip("\ufeff").strip()
    if not line:
        facts.empty = not head.strip()
        return False
    cells = [cell.strip().strip('"').lower() for cell in line.split(",")]
    if cells == [name.lower() for name in schema.header_names]:
        facts.empty = not rest.strip() and member.file_size <= len(head)
        return True
    if line[0].isdigit() or line[0] == "-":
        return False
    expected = ",".join(schema.header_names)
    reason = f"a header row never seen for this data type: {line[:200]!r}; expected {expected}"
    raise ConversionError(file.key, reason, 1)


def _bounds(file: ArchiveFile, schema: TableSchema) -> tuple[dt.datetime, dt.datetime]:
    """The times a file's rows may have: its day or month, one day of slack either side (a kline's interval when it
    is longer than a day: a weekly candle in a daily file opened days before)."""
    first = dt.datetime.combine(file.date, dt.time(), dt.UTC)
    last_day = month_end(file.date) if file.period is Period.MONTHLY else file.date
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC)
    slack = dt.timedelta(days=1)
    if file.interval is not None:
        slack = max(slack, dt.timedelta(seconds=file.interval.seconds))
    return first - slack, end + slack


def _microseconds_of(time: dt.datetime) -> int:
    return (time - _EPOCH) // dt.timedelta(microseconds=1)


@attrs.define
class _Batches:
    """The file's CSV (in ``csv_bytes`` where it was inflated whole) as typed record batches of the table."""

    _archive: zipfile.ZipFile
    _member: zipfile.ZipInfo
    _file: ArchiveFile
    _schema: TableSchema
    _facts: FileFacts
    _csv_bytes: bytes | None
    _target: pa.Schema = attrs.field(init=False)
    _lo: pa.Scalar = attrs.field(init=False)
    _hi: pa.Scalar = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        import pyarrow as pa

        self._target = arrow_schema(self._schema)
        stamp = pa.timestamp(TIMESTAMP_UNIT, tz=TIMEZONE)
        self._lo, self._hi = (int_scalar(_microseconds_of(t), stamp) for t in _bounds(self._file, self._schema))

    def as_read(self) -> Iterator[pa.RecordBatch]:
        return self._typed()

    def ordered(self, *, whole: bool) -> Iterator[pa.RecordBatch]:
        """Deduplicated and sorted: a file of a type that needs it is read whole (metrics: 288 rows a day).

        A large type that needs only sorting (bookTicker) is streamed and sorted as it streams (:meth:`_in_order`)
        unless ``whole``.
        """
        import pyarrow as pa

        if not self._schema.dedupe and not whole:
            yield from self._in_order()
            return
        table = pa.Table.from_batches(list(self._typed()), schema=self._target)
        if self._schema.dedupe:
            unique = _first_of_each(table)
            self._facts.duplicates = table.num_rows - unique.num_rows
            table = unique
        if self._schema.sort:
            time = self._schema.table_time_column
            table = table.take(_stable_order(table, time))
        self._facts.rows = table.num_rows
        yield from table.to_batches()

    def _in_order(self) -> Iterator[pa.RecordBatch]:
        """The batches sorted as they stream, where rows are out of order only near one another (bookTicker's are
        by milliseconds): each batch is sorted together with the rows held back from the one before, and the rows
        earlier than the new batch's earliest are released. Memory stays about two batches whatever the file's size.

        Raises :class:`OutOfOrder` where a row comes before one already released (the disorder spans more than a
        batch) or has no time: the caller then reads the file whole and sorts it.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        time = self._schema.table_time_column
        held: pa.Table | None = None  # sorted; its rows are not earlier than any released
        released: pa.Scalar | None = None  # the last time released
        for batch in self._typed():
            column = batch.column(time)
            if not batch.num_rows:
                continue
            if column.null_count:
                raise OutOfOrder(self._file.key)
            first = pc.min(column)
            if released is not None and pc.less(first, released).as_py():
                raise OutOfOrder(self._file.key)
            sorted_batch = len(column) == 1 or pc.all(pc.greater_equal(column[1:], column[:-1])).as_py()
            table = pa.Table.from_batches([batch])
            follows = held is None or not pc.less(column[0], held.column(time)[-1]).as_py()
            if held is not None:
                table = pa.concat_tables([held, table])
            if not (sorted_batch and follows):  # a file in order (the usual case) is never sorted
                table = table.take(_stable_order(table, time))
            cut = pc.sum(pc.less(table.column(time), first)).as_py() or 0
            held = table.slice(cut)
            if cut:
                out = table.slice(0, cut)
                released = out.column(time)[cut - 1]
                yield from out.combine_chunks().to_batches()
        if held is not None and held.num_rows:
            yield from held.combine_chunks().to_batches()

    def _typed(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        schema, facts = self._schema, self._facts
        header_lines = 1 if facts.header else 0
        read = pa_csv.ReadOptions(column_names=list(schema.names), skip_rows=header_lines, block_size=BLOCK_SIZE)
        convert = pa_csv.ConvertOptions(
            column_types=csv_types(schema),
            timestamp_parsers=[_TEXT_TIME, _DATE],
            true_values=_TRUE,
            false_values=_FALSE,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        rows = 0
        try:
            for raw in self._parsed(read, convert):
                batch = self._normalise(raw)
                self._check_times(batch, header_lines + rows)
                rows += batch.num_rows
                facts.rows += batch.num_rows
                yield batch
        except ConversionError:
            raise
        except pa.ArrowInvalid as exc:
            line, reason = _locate(self._archive, self._member, schema, header_lines)
            raise ConversionError(self._file.key, reason or f"{exc}", line) from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:  # the CRC is checked at the member's end
            raise ConversionError(self._file.key, f"a broken zip: {exc}") from None  # (as _unzipping: in a generator)

    def _parsed(self, read: Any, convert: Any) -> Iterator[pa.RecordBatch]:
        """The CSV parsed: whole (on every core) where it is in memory, else streamed a block at a time."""
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        if self._csv_bytes is not None:
            table = pa_csv.read_csv(pa.py_buffer(self._csv_bytes), read_options=read, convert_options=convert)
            yield from table.to_batches()
            return
        with self._archive.open(self._member) as stream:
            yield from pa_csv.open_csv(stream, read_options=read, convert_options=convert)

    def _normalise(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        """The source batch as the table's: times as µs timestamps in UTC, a date and an hour made one time."""
        import pyarrow as pa
        import pyarrow.compute as pc

        schema = self._schema
        target = pa.timestamp(TIMESTAMP_UNIT, tz=TIMEZONE)
        columns: dict[str, Any] = {}
        for column in schema.columns:
            values = raw.column(column.name)
            if column.type is ColumnType.TIME:
                columns[column.name] = _microseconds(values).view(target)
            elif column.type in (ColumnType.TIME_TEXT, ColumnType.DATE_TEXT):
                columns[column.name] = values.cast(pa.timestamp(TIMESTAMP_UNIT)).cast(target)
            else:
                columns[column.name] = values
        if schema.hour_column is not None:
            hours = pc.multiply_checked(columns.pop(schema.hour_column), int_scalar(3_600_000_000))
            date = columns.pop(schema.time_column)
            columns = {"time": pc.add(date, hours.cast(pa.duration(TIMESTAMP_UNIT))), **columns}
        return pa.RecordBatch.from_arrays([columns[name] for name, _ in schema.table_columns], schema=self._target)

    def _check_times(self, batch: pa.RecordBatch, before: int) -> None:
        """Every time of the file's dating column within its period (a unit mistake shows as 1970 or 57111)."""
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        times = batch.column(self._schema.table_time_column)
        bounds = pc.min_max(times)
        first, last = bounds["min"], bounds["max"]
        # .value (microseconds), not .as_py(): a datetime would import pandas (see int_scalar).
        if not first.is_valid or (self._lo.value <= first.value and last.value <= self._hi.value):
            return
        outside = pc.or_kleene(pc.less(times, self._lo), pc.greater(times, self._hi))
        if pc.any(outside).as_py():
            index = pc.index(outside, True).as_py()
            value = times[index].as_py()
            raise ConversionError(
                self._file.key,
                f"{self._schema.table_time_column} {value} is outside the file's period "
                f"({self._file.date_text}, with a day of slack): a unit mistake?",
                before + index + 1,
            )


def _microseconds(values: pa.Array) -> pa.Array:
    """Integer times in microseconds, from milliseconds or microseconds told apart by size (a file holds one unit:
    the whole batch is looked at once, each value only where both occur)."""
    import pyarrow.compute as pc

    bounds = pc.min_max(values)
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    if first is None or first >= _MICROSECONDS_FROM:
        return values
    if last < _MICROSECONDS_FROM:
        return pc.multiply_checked(values, int_scalar(1000))
    return pc.if_else(
        pc.less(values, int_scalar(_MICROSECONDS_FROM)), pc.multiply_checked(values, int_scalar(1000)), values
    )


def _first_of_each(table: pa.Table) -> pa.Table:
    """The table's rows without exact duplicates: the first of each, in the order they came.

    Each row gets one integer key, a column at a time: the column's values numbered by dictionary encoding (a null
    is a value of its own), combined with the key so far as ``key * values + number`` and numbered again, so that
    the key stays below the rows' count squared. Not ``group_by``: it imports pyarrow's dataset module, and with it
    pandas (see :func:`~binance_archive.tables.arrow.int_scalar`).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not table.num_rows:
        return table
    table = table.combine_chunks()  # a chunk a column
    key: pa.Array | None = None
    for column in table.columns:
        encoded = pc.dictionary_encode(column.chunk(0), null_encoding="encode")
        number = encoded.indices.cast(pa.int64())
        if key is None:
            key = number
        else:
            combined = pc.add(pc.multiply(key, int_scalar(len(encoded.dictionary))), number)
            key = pc.dictionary_encode(combined).indices.cast(pa.int64())
    if key is None:
        return table
    # unique() keeps the order of first appearance, and index_in() finds each key's first row: already in order.
    return table.take(pc.index_in(pc.unique(key), value_set=key))


def _stable_order(table: pa.Table, column: str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.sort_indices(table, sort_keys=[(column, "ascending")])  # nulls last, the default


def _locate(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, schema: TableSchema, header_lines: int
) -> tuple[int | None, str]:
    """The first line pyarrow refused, found again line by line (it names the row's text, not its number)."""
    checks = [_parser(column.type) for column in schema.columns]
    try:
        with archive.open(member) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
            for number, row in enumerate(csv.reader(text), start=1):
                if number <= header_lines or not row:
                    continue
                if len(row) != len(checks):
                    return number, f"{len(row)} columns where {len(checks)} were expected: {','.join(row)[:200]!r}"
                for column, value, check in zip(schema.columns, row, checks, strict=True):
                    if value and not check(value):
                        return number, f"{column.name} is {value[:50]!r}, not a {column.type.value}"
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, csv.Error) as exc:
        return None, f"a broken zip or CSV: {exc}"
    return None, ""


def _parser(kind: ColumnType) -> Callable[[str], bool]:
    def parses(convert: Callable[[str], object]) -> Callable[[str], bool]:
        def check(value: str) -> bool:
            try:
                convert(value)
            except ValueError:
                return False
            return True

        return check

    if kind in (ColumnType.TIME, ColumnType.INT):
        return parses(int)
    if kind is ColumnType.FLOAT:
        return parses(float)
    if kind is ColumnType.BOOL:
        return lambda value: value in _TRUE or value in _FALSE
    if kind is ColumnType.TIME_TEXT:
        return parses(lambda value: dt.datetime.strptime(value, _TEXT_TIME))
    if kind is ColumnType.DATE_TEXT:
        return parses(lambda value: dt.datetime.strptime(value, _DATE))
    return lambda value: True
