"""First-run setup as a use case: the organization, its first admin and their session, once; on both engines."""

import pytest
from sqlmodel import select

from models import Organization, Role, User
from services import config
from services.acting import SCOPES
from services.errors import PermissionDenied, ValidationFailed
from services.identity import sessions, sign_in
from services.identity.next_step import Next, NextStep
from services.team import first_run


def set_up(email: str = 'ada@example.com', setup_code: str = '') -> Next:
    return first_run.set_up(
        scopes=SCOPES,
        organization_name='Acme',
        name='Ada',
        email=email,
        password='long enough password',
        setup_code=setup_code,
        ip='127.0.0.1',
        user_agent='Test',
    )


def test_setup_creates_the_first_admin_signed_in_and_then_closes(database: None) -> None:
    assert SCOPES.reading(lambda session: first_run.setup_form(session=session)) == first_run.SetupForm(
        asks_setup_code=False
    )
    next_step = set_up()
    token = sign_in.start_session(scopes=SCOPES, code=next_step.handoff, previous_token=None)
    signed = SCOPES.reading(lambda session: sessions.signed_in(session=session, token=token))
    assert signed is not None and (signed.user.email, signed.user.role) == ('ada@example.com', Role.ADMIN)
    assert SCOPES.reading(lambda session: first_run.setup_form(session=session)) is None
    with pytest.raises(PermissionDenied, match='Setup is already complete'):
        set_up(email='eve@example.com')
    assert SCOPES.reading(lambda session: len(session.exec(select(Organization)).all())) == 1


def test_every_invalid_field_is_told_at_once_and_nothing_is_created(database: None) -> None:
    with pytest.raises(ValidationFailed) as refused:
        first_run.set_up(
            scopes=SCOPES,
            organization_name='',
            name='Ada',
            email='not an address',
            password='short',
            setup_code='',
            ip=None,
            user_agent=None,
        )
    assert set(refused.value.errors) == {'organization', 'email', 'password'}
    assert SCOPES.reading(lambda session: session.exec(select(User)).all()) == []


def test_on_a_reachable_address_only_the_setup_code_opens_setup(
    database: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('CXT_HOST', '0.0.0.0')
    config.configure(config.load_settings())
    assert SCOPES.reading(lambda session: first_run.setup_form(session=session)) == first_run.SetupForm(
        asks_setup_code=True
    )
    with pytest.raises(ValidationFailed) as refused:
        set_up(setup_code='guessed')
    assert list(refused.value.errors) == [first_run.FIELD]
    assert SCOPES.reading(lambda session: session.exec(select(User)).all()) == []
    assert set_up(setup_code=first_run.setup_code()).step == NextStep.SESSION
