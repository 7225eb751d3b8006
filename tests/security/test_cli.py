"""The operator's command line (`uv run main.py COMMAND`), run as the real program against the server's data dir."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from models import AuditAction, AuditEvent, Role, User, UserStatus
from services.db import write_scope
from services.identity import attempts
from tests.factories import DEFAULT_PASSWORD, make_organization, make_user, sign_in

REPO = Path(__file__).resolve().parents[2]


def run_command(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != 'PYTEST_CURRENT_TEST'}
    return subprocess.run(
        [sys.executable, str(REPO / 'main.py'), *arguments], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def team(database: None) -> dict[str, User]:
    with write_scope() as session:
        organization = make_organization(session, name='Acme')
        return {
            'admin': make_user(session, organization=organization, email='ada@example.com'),
            'member': make_user(session, organization=organization, email='max@example.com', role=Role.MEMBER),
        }


def audited(action: AuditAction) -> list[AuditEvent]:
    with write_scope() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


def test_help_lists_the_commands() -> None:
    shown = run_command('--help')
    assert shown.returncode == 0
    for command in ('unlock', 'reset-password', 'create-admin'):
        assert command in shown.stdout


def test_unlock(team: dict[str, User]) -> None:
    for _ in range(attempts.PAIR_LIMIT):
        with pytest.raises(Exception, match='Invalid email or password'):
            sign_in('ada@example.com', 'wrong password!', ip='192.0.2.1')
    done = run_command('unlock', 'ada@example.com')
    assert done.returncode == 0, done.stderr
    assert 'ada@example.com can sign in again' in done.stdout
    assert sign_in('ada@example.com', DEFAULT_PASSWORD, ip='192.0.2.1').email == 'ada@example.com'
    (event,) = audited(AuditAction.LOGIN_UNLOCKED)
    assert (event.actor_email, event.target) == ('command line', 'ada@example.com')


def test_reset_password_prints_a_one_time_link(team: dict[str, User]) -> None:
    done = run_command('reset-password', 'max@example.com')
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert '/reset-password/' in link
    (event,) = audited(AuditAction.PASSWORD_RESET_REQUESTED)
    assert (event.actor_email, event.target) == ('command line', 'max@example.com')
    unknown = run_command('reset-password', 'nobody@example.com')
    assert unknown.returncode == 1 and 'No active account uses nobody@example.com' in unknown.stderr


def test_create_admin_promotes_a_member_or_makes_a_new_account(team: dict[str, User]) -> None:
    promoted = run_command('create-admin', 'max@example.com')
    assert promoted.returncode == 0, promoted.stderr
    created = run_command('create-admin', 'new-admin@example.com', '--name', 'Nia New')
    assert created.returncode == 0, created.stderr
    assert '/reset-password/' in created.stdout
    with write_scope() as session:
        max_ = session.exec(select(User).where(User.email == 'max@example.com')).one()
        nia = session.exec(select(User).where(User.email == 'new-admin@example.com')).one()
    assert (max_.role, nia.role, nia.status, nia.name) == (Role.ADMIN, Role.ADMIN, UserStatus.ACTIVE, 'Nia New')
    assert len(audited(AuditAction.ADMIN_CREATED)) == 2
    with pytest.raises(Exception, match='Invalid email or password'):
        sign_in('new-admin@example.com', '!')  # no password works until the link is used


def test_create_admin_with_several_organizations_asks_which(team: dict[str, User]) -> None:
    with write_scope() as session:
        make_organization(session, name='Other')
    done = run_command('create-admin', 'someone@example.com')
    assert done.returncode == 1
    assert 'Several organizations exist; name one with --organization' in done.stderr
