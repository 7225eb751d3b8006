"""The widget API's held SQLite readers: one per live thread, replaced after a failure, closed once the thread ends."""

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from services import db

# The held readers are SQLite's alone: on PostgreSQL hot_read_connection is an ordinary pooled checkout.
pytestmark = pytest.mark.sqlite_only('held SQLite readers')


def in_thread(work: Callable[[], None]) -> None:
    """Run `work` on a new thread (like a request on a worker thread) and wait for the thread to end."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []


def answers(connection: Connection) -> bool:
    return connection.execute(text('SELECT 1')).scalar() == 1


def test_a_thread_keeps_its_reader_between_requests(database: None) -> None:
    with db.hot_read_connection() as first:
        assert answers(first)
    with db.hot_read_connection() as second:
        assert second is first and answers(second)


def test_a_failure_inside_a_request_closes_the_reader_and_the_next_request_gets_a_fresh_one(database: None) -> None:
    with pytest.raises(OperationalError), db.hot_read_connection() as broken:
        broken.execute(text('SELECT * FROM no_such_table'))
    assert broken.closed, 'a reader left in an unknown state is not reused'
    with db.hot_read_connection() as fresh:
        assert fresh is not broken and answers(fresh)
    with db.hot_read_connection() as again:
        assert again is fresh


def test_the_reader_of_a_thread_that_ended_is_closed_when_the_next_one_is_opened(database: None) -> None:
    held: list[Connection] = []

    def request() -> None:
        with db.hot_read_connection() as connection:
            assert answers(connection)
            held.append(connection)

    in_thread(request)
    (worker_reader,) = held
    assert not worker_reader.closed, 'held while its thread ran'
    # Worker threads come and go; their readers must not pile up as open database connections.
    in_thread(request)
    assert worker_reader.closed
    second_reader = held[1]
    assert second_reader is not worker_reader and not second_reader.closed


def test_disposing_some_other_engine_leaves_the_apps_readers_open(database: None, tmp_path: Path) -> None:
    with db.hot_read_connection() as reader:
        assert answers(reader)
    # e.g. a maintenance script's engine on another file, made and thrown away in this process
    other = db.make_engine(f'sqlite:///{tmp_path / "other.sqlite3"}')
    with other.connect() as connection:
        assert answers(connection)
    other.dispose()
    with db.hot_read_connection() as same:
        assert same is reader and not same.closed and answers(same)


def test_disposing_the_apps_engine_closes_its_readers(database: None) -> None:
    with db.hot_read_connection() as reader:
        assert answers(reader)
    db.get_engine().dispose()
    assert reader.closed
    with db.hot_read_connection() as fresh:
        assert fresh is not reader and answers(fresh)
