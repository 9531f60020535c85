"""Hot-path statements run straight on the driver's cursor, compiled once per dialect.

SQLAlchemy's Core execution costs tens of microseconds a statement in bookkeeping (cache
keys, execution contexts, result objects) and the ORM's loading and flushing several times
that; the few statements every inbound message runs pay it thousands of times a second. Here
a Core statement is compiled once per dialect into its SQL string, the order of its bind
parameters and the column types' conversions (UTC timestamps, JSON), and run on the DBAPI
cursor of the session's own connection — inside the same transaction and savepoints. Driver
errors come out as SQLAlchemy's exceptions, as they would through Core. On SQLite, UTC
timestamps convert in one step each way (`storage/types.py`), to the very strings and values
SQLAlchemy's own chain of conversions gives.

`attach` turns a row into an ORM object the session tracks as though it had loaded it, for
code that goes on to change it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, exc, inspect
from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine
from sqlmodel import Session, SQLModel

from storage.types import UTCDateTime, sqlite_utc_bind, sqlite_utc_result

Processor = Callable[[Any], Any] | None
M = TypeVar("M", bound=SQLModel)


@dataclass(frozen=True)
class Compiled:
    """A statement ready for the driver: SQL, parameter order and conversions."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    defaults: Mapping[str, Any]
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for one set of values (converted, in order)."""
        defaults = self.defaults
        converted = []
        for name, process in zip(self.names, self.binds, strict=True):  # a plain loop: hot
            value = values[name] if name in values else defaults[name]
            converted.append(value if process is None or value is None else process(value))
        return converted if self.positional else dict(zip(self.names, converted, strict=True))

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """Convert one result row's values to their Python types."""
        return tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


_COMPILED: dict[tuple[int, str], tuple[ClauseElement, Compiled]] = {}


def compiled(stmt: ClauseElement, dialect: Dialect) -> Compiled:
    """Compile `stmt` for `dialect` once (statements passed here are built once and kept)."""
    key = (id(stmt), dialect.name)
    found = _COMPILED.get(key)
    if found is not None and found[0] is stmt:
        return found[1]
    result = _compile(stmt, dialect)
    _COMPILED[key] = (stmt, result)  # holding the statement keeps its id from being reused
    return result


def _compile(stmt: ClauseElement, dialect: Dialect) -> Compiled:
    """Compile a statement and collect its parameters' and columns' conversions."""
    compiled_stmt: SQLCompiler = stmt.compile(  # type: ignore[assignment]
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    names = tuple(compiled_stmt.positiontup or compiled_stmt.binds)
    binds = compiled_stmt.binds
    defaults = {name: binds[name].value for name in names if not binds[name].required}
    columns = getattr(stmt, "exported_columns", ())
    return Compiled(
        sql=compiled_stmt.string,
        names=names,
        positional=compiled_stmt.positiontup is not None,
        defaults=defaults,
        binds=tuple(_bind_processor(binds[n].type, dialect) for n in names),
        results=tuple(_result_processor(column.type, dialect) for column in columns),
    )


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """The conversion of a parameter of this type for the driver (timestamps' own on SQLite)."""
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_utc_bind
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """The conversion of a result value of this type (timestamps' own on SQLite)."""
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_utc_result
    return type_.dialect_impl(dialect).result_processor(dialect, None)


_DRIVER = "direct.driver"


def _driver(session: Session) -> tuple[Any, Dialect]:
    """The DBAPI connection of the session's transaction, and its dialect.

    Looked up once per transaction: `session.connection()` walks the ORM's transaction
    machinery on every call, and a message runs a dozen statements. A transaction that is
    no longer active (rolled back, or failed in a flush) asks the session again, which
    begins a new one or raises as the ORM would.
    """
    transaction = session.get_transaction()
    held = session.info.get(_DRIVER)
    if (
        held is not None
        and transaction is not None
        and held[0] is transaction
        and transaction.is_active
    ):
        return held[1], held[2]
    connection = session.connection()
    found = connection.connection.driver_connection, connection.dialect
    session.info[_DRIVER] = (session.get_transaction(), *found)
    return found


def _raise(error: Exception, prepared: Compiled, dialect: Dialect) -> None:
    """Re-raise a driver error as SQLAlchemy's exception for it."""
    dbapi = dialect.loaded_dbapi
    if isinstance(error, dbapi.Error):
        raise exc.DBAPIError.instance(
            prepared.sql, None, error, dbapi.Error, hide_parameters=True, dialect=dialect
        ) from error
    raise error


def execute(session: Session, stmt: ClauseElement, values: Mapping[str, Any]) -> int:
    """Run a statement once; return the rows it changed."""
    driver, dialect = _driver(session)
    prepared = compiled(stmt, dialect)
    cursor = driver.cursor()
    try:
        cursor.execute(prepared.sql, prepared.parameters(values))
    except Exception as error:
        _raise(error, prepared, dialect)
    return int(cursor.rowcount)


def execute_many(session: Session, stmt: ClauseElement, rows: Iterable[Mapping[str, Any]]) -> int:
    """Run a statement for every set of values (executemany); return the rows changed."""
    driver, dialect = _driver(session)
    prepared = compiled(stmt, dialect)
    parameters = [prepared.parameters(values) for values in rows]
    if not parameters:
        return 0
    cursor = driver.cursor()
    try:
        cursor.executemany(prepared.sql, parameters)
    except Exception as error:
        _raise(error, prepared, dialect)
    return int(cursor.rowcount)


def _fetched(
    session: Session, stmt: ClauseElement, values: Mapping[str, Any], *, one: bool
) -> tuple[Any, Compiled]:
    """Run a statement; return its first raw row (or all of them) and its compiled form."""
    driver, dialect = _driver(session)
    prepared = compiled(stmt, dialect)
    cursor = driver.cursor()
    try:
        cursor.execute(prepared.sql, prepared.parameters(values))
        raw = cursor.fetchone() if one else cursor.fetchall()
    except Exception as error:
        _raise(error, prepared, dialect)
    return raw, prepared


def fetch_one(
    session: Session, stmt: ClauseElement, values: Mapping[str, Any]
) -> tuple[Any, ...] | None:
    """Run a statement and return its first row, converted; None when there is none."""
    raw, prepared = _fetched(session, stmt, values, one=True)
    return None if raw is None else prepared.row(raw)


def fetch_all(
    session: Session, stmt: ClauseElement, values: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run a statement and return all its rows, converted."""
    raws, prepared = _fetched(session, stmt, values, one=False)
    return [prepared.row(raw) for raw in raws]


def columns_of(model: type[SQLModel]) -> tuple[str, ...]:
    """The model's column attributes, in table order."""
    return tuple(attr.key for attr in _mapper(model).column_attrs)


def _mapper(model: type[SQLModel]) -> Mapper[Any]:
    """The ORM mapper of a table model."""
    return inspect(model)


def attach(session: Session, model: type[M], values: dict[str, Any]) -> M:
    """The session's object for this row: the one it holds already, or one built from it.

    A built object is persistent and clean, as though the session had loaded it: changes to
    it are flushed like any other. An object the session holds wins over the row (its
    unflushed changes are newer), as with an ORM query.
    """
    mapper = _mapper(model)
    key = mapper.identity_key_from_primary_key((values["id"],))
    held = session.identity_map.get(key)
    if held is not None:
        return held  # type: ignore[no-any-return]
    obj: M = mapper.class_manager.new_instance()
    state = instance_state(obj)
    state.dict.update(values)
    # What the ORM's own loading does for a new row (sqlalchemy/orm/loading.py `_instance`):
    # key it, put it in the identity map, mark every attribute clean. `session.add` after
    # `make_transient_to_detached` ends the same but walks the cascades on every call.
    state.key, state.identity_token = key, None
    state.session_id = session.hash_key
    session.identity_map._add_unpresent(state, key)  # noqa: SLF001
    state._commit_all(state.dict, session.identity_map)  # noqa: SLF001
    return obj


def defaults_of(model: type[SQLModel]) -> dict[str, Any]:
    """A new row's column values as the model's field defaults make them (without `id`)."""
    return {
        name: factory() if factory is not None else default
        for name, factory, default in _field_defaults(model)
    }


@cache
def _field_defaults(model: type[SQLModel]) -> tuple[tuple[str, Any, Any], ...]:
    """Each column's default factory or default value, read once per model."""
    fields = model.model_fields
    return tuple(
        (name, fields[name].default_factory, fields[name].default)
        for name in columns_of(model)
        if name != "id"
    )


_INSERTS: dict[type[SQLModel], Any] = {}


def add(session: Session, model: type[SQLModel], values: Mapping[str, Any]) -> int:
    """Insert a row (the model's defaults for columns not given); return its new id.

    One statement on the driver's cursor, built once per model; no ORM object is made.
    """
    return _insert_row(session, model, {**defaults_of(model), **values})


def _insert_row(session: Session, model: type[SQLModel], row: Mapping[str, Any]) -> int:
    """Insert a row that has every column but `id`; return the new id."""
    stmt = _INSERTS.get(model)
    if stmt is None:
        table = model.__table__  # type: ignore[attr-defined]
        names = [name for name in columns_of(model) if name != "id"]
        stmt = _INSERTS[model] = (
            sa_insert(table).values({n: bindparam(n) for n in names}).returning(table.c.id)
        )
    found = fetch_one(session, stmt, row)
    assert found is not None
    return int(found[0])


def insert(session: Session, model: type[M], values: Mapping[str, Any]) -> M:
    """Insert a row as `add` does and return it as a persistent object with its new id."""
    row = {**defaults_of(model), **values}
    return attach(session, model, {"id": _insert_row(session, model, row), **row})
