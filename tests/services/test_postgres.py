"""The same rules on PostgreSQL: `CXT_DATABASE_URL=postgresql+psycopg://…` must work."""

import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from models import ApiKey, User
from services.db import read_connection, write_scope
from services.errors import InvalidCredentials, LoginLocked
from services.keys import api_keys
from services.team import organizations
from tests.factories import DEFAULT_PASSWORD, acting, make_organization, make_user, sign_in


@pytest.fixture
def admin(pg_database: None) -> User:
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'))


def test_key_lifecycle_on_postgres(admin: User) -> None:
    with write_scope() as session:
        organizations.update_subdomains(session=session, actor=admin, subdomain='ACME', sandbox_subdomain='')
        old = api_keys.generate_key(session=session, actor=admin)
    with write_scope() as session:
        new = api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(hours=1))
    with read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=old) is not None
        verified = api_keys.verify_key(connection=connection, key=new)
        assert verified is not None and verified.subdomain == 'acme'
        assert organizations.origin_is_known(connection=connection, origin='https://acme.kustomerapp.com')
    with write_scope() as session:
        (old_key,) = api_keys.get_overview(session=session, actor=admin).in_grace
        api_keys.revoke_old_key(session=session, actor=acting(session, admin), key_id=old_key.id or 0)
    with read_connection() as connection:
        assert api_keys.verify_key(connection=connection, key=old) is None


def test_concurrent_rotations_on_postgres_leave_one_active_key(admin: User) -> None:
    with write_scope() as session:
        api_keys.generate_key(session=session, actor=admin)
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def rotate() -> None:
        try:
            barrier.wait()
            with write_scope() as session:
                api_keys.rotate_key(session=session, actor=acting(session, admin), grace=timedelta(0))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=rotate) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with write_scope() as session:
        keys = session.exec(select(ApiKey)).all()
    assert len(keys) == 11 and sum(key.expires_at is None for key in keys) == 1


def test_lockout_on_postgres(admin: User) -> None:
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            sign_in(admin.email, 'wrong password!')
    with pytest.raises(LoginLocked):
        sign_in(admin.email, DEFAULT_PASSWORD)
