"""What changing the server secret does: stored keys and copyable invitation links say how to recover, sessions end."""

import base64

import pytest

from models import User
from services import config, crypto
from services.db import write_scope
from services.errors import ServiceError, ValidationFailed
from services.identity import invitations
from services.keys import api_keys
from tests.factories import acting, make_organization, make_user

OLD_SECRET = 'the first server secret, long enough'
NEW_SECRET = 'a different server secret, also long'


@pytest.fixture
def admin(database: None, monkeypatch: pytest.MonkeyPatch) -> User:
    use_secret(OLD_SECRET, monkeypatch)
    with write_scope() as session:
        return make_user(session, organization=make_organization(session, name='Acme'), name='Ada Admin')


def use_secret(secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an operator does: set CXT_SECRET_KEY and restart (the settings are read again)."""
    monkeypatch.setenv('CXT_SECRET_KEY', secret)
    config.configure(config.load_settings())


def test_a_key_stored_under_the_old_secret_says_to_rotate_and_rotation_recovers(
    admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    with write_scope() as session:
        old_key = api_keys.generate_key(session=session, actor=admin)
    use_secret(NEW_SECRET, monkeypatch)
    with pytest.raises(ServiceError) as raised, write_scope() as session:
        api_keys.reveal_key(session=session, actor=acting(session, admin))
    assert str(raised.value) == crypto.UNDECRYPTABLE
    assert 'Rotate the key' in str(raised.value)
    with write_scope() as session:
        new_key = api_keys.rotate_key(
            session=session, actor=acting(session, admin), grace=api_keys.GRACE_CHOICES['Immediately']
        )
    with write_scope() as session:
        assert api_keys.reveal_key(session=session, actor=acting(session, admin)) == new_key
    assert new_key != old_key


def test_an_invitation_link_made_under_the_old_secret_can_no_longer_be_copied_but_resend_recovers(
    admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    with write_scope() as session:
        emailed = invitations.invite_member(session=session, actor=admin, email='grace@example.com', role='member')
    use_secret(NEW_SECRET, monkeypatch)
    with (
        pytest.raises(ValidationFailed, match=r'This link can no longer be shown\. Use Resend to make a new one\.'),
        write_scope() as session,
    ):
        invitations.invitation_link(session=session, actor=admin, invitation_id=emailed.invitation_id)
    # The link already in the person's mailbox still works: only its hash is stored.
    token = emailed.link.rsplit('/', 1)[1]
    with write_scope() as session:
        assert invitations.lookup_invitation(session=session, token=token).state == 'valid'
    with write_scope() as session:
        resent = invitations.resend_invitation(session=session, actor=admin, invitation_id=emailed.invitation_id)
    with write_scope() as session:
        copied = invitations.invitation_link(session=session, actor=admin, invitation_id=emailed.invitation_id)
    assert copied == resent.link != emailed.link


def test_the_session_signing_secret_follows_the_server_secret_and_is_its_own_key() -> None:
    assert crypto.session_secret(OLD_SECRET) == crypto.session_secret(OLD_SECRET), 'stable across restarts'
    assert crypto.session_secret(NEW_SECRET) != crypto.session_secret(OLD_SECRET), 'a new secret ends every session'
    session_key = base64.urlsafe_b64decode(crypto.session_secret(OLD_SECRET))
    assert len(session_key) == 32
    # Never the key that encrypts stored API keys, so a leaked session secret cannot decrypt them.
    assert session_key != crypto.derive_key(OLD_SECRET, 'api-key-encryption')
    assert OLD_SECRET.encode() not in session_key
