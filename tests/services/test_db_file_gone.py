"""A write to an SQLite database file deleted or replaced under the running process says `Could not save:` and
claims nothing: such writes used to succeed into the deleted file (lost with it) and be reported as saved."""

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import select

from models import Organization
from services import db


def database_path() -> Path:
    path = db.get_engine().url.database
    assert path is not None
    return Path(path)


def save_organization(name: str) -> None:
    with db.write_scope() as session:
        session.add(Organization(name=name))


def refused_saving(name: str) -> str:
    with pytest.raises(Exception) as raised:
        save_organization(name)
    said = db.describe_failure(raised.value)
    assert said is not None, f'not described as a database failure: {raised.value!r}'
    return said


@pytest.mark.sqlite_only('an SQLite file deleted under the process')
def test_a_write_after_the_database_file_was_deleted_is_refused(database: None) -> None:
    save_organization('Before')  # the pool holds a connection to the file from now on
    path = database_path()
    for leftover in path.parent.glob(path.name + '*'):
        leftover.unlink()
    said = refused_saving('After')
    assert said.startswith('Could not save:') and 'Nothing was changed' in said
    assert not path.exists(), 'no empty database may be created in its place'


@pytest.mark.sqlite_only('an SQLite file replaced under the process')
def test_a_write_after_the_database_file_was_replaced_is_refused_and_the_new_file_is_untouched(
    database: None,
) -> None:
    save_organization('Before')
    path = database_path()
    copy = path.with_name('copy.sqlite3')
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    copy.replace(path)  # a restore put back under the running process
    said = refused_saving('After')
    assert said.startswith('Could not save:')
    with sqlite3.connect(path) as restored:
        assert [name for (name,) in restored.execute('SELECT name FROM organization')] == ['Before']


@pytest.mark.sqlite_only('an SQLite file deleted under the process')
def test_a_new_connection_never_creates_an_empty_database_where_one_was_deleted(database: None) -> None:
    save_organization('Before')
    path = database_path()
    for leftover in path.parent.glob(path.name + '*'):
        leftover.unlink()
    db.get_engine().dispose()  # the next write opens a new connection
    assert refused_saving('After').startswith('Could not save:')
    assert not path.exists()


def test_writes_to_the_database_in_place_still_save(database: None) -> None:
    save_organization('Acme')
    with db.read_scope() as session:
        assert [row.name for row in session.exec(select(Organization)).all()] == ['Acme']
