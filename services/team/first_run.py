"""First run on an address other machines can reach: a one-time setup code guards the setup page.

Whoever reaches a fresh instance first would otherwise become its admin. So, as Jenkins does, the process prints a
code at start-up and `/setup` creates the first admin only for someone who read it: the person who started the
server. On a loopback address only the machine's own users reach the page, and no code is asked.

The code lives in this process's memory only, made once per process: nothing secret is left on disk to clean up
(a file would outlive a failed clean-up or a crash), and a restart voids every code printed before. It is no longer
useful once the first admin exists: the setup page and `auth.create_first_admin` are closed for good then.
"""

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from sqlmodel import Session

from services.acting import Scopes
from services.config import current_settings
from services.errors import ValidationFailed
from services.identity import auth, sessions
from services.identity.next_step import Next, session_started

FIELD = 'setup_code'
_code: str | None = None


def setup_code_required(host: str) -> bool:
    """True when `host` (CXT_HOST, the listen address) is not a loopback address, so others may reach `/setup`."""
    if host.strip().lower() == 'localhost':
        return False
    try:
        return not ipaddress.ip_address(host.strip('[] ')).is_loopback
    except ValueError:  # a host name: whatever it resolves to, it is not ours to trust
        return True


def setup_code() -> str:
    """This process's setup code: 128 random bits, made on first use and the same until the process ends."""
    global _code
    if _code is None:
        _code = secrets.token_hex(16)
    return _code


def start_up_notice(*, host: str) -> str | None:
    """The line main.py prints at start-up: the setup code, when one is required."""
    if not setup_code_required(host):
        return None
    return f'Setup code (asked on /setup until the first admin exists): {setup_code()}'


def check_setup_code(*, host: str, entered: str) -> None:
    """Raise ValidationFailed (at the `setup_code` field) unless no code is required or `entered` is this process's
    code; compared in constant time."""
    if not setup_code_required(host):
        return
    entered = entered.strip()
    if not entered:
        raise ValidationFailed("Enter the setup code from the server's start-up output", field=FIELD)
    if not hmac.compare_digest(entered.encode(), setup_code().encode()):
        raise ValidationFailed('Wrong setup code: copy it from the latest start-up output of the server', field=FIELD)


@dataclass(frozen=True)
class SetupForm:
    """What `/setup` asks while it is open: the setup code too on an address others can reach."""

    asks_setup_code: bool


def setup_form(*, session: Session) -> SetupForm | None:
    """The setup form, or None once the first admin exists (setup is closed for good then)."""
    if not auth.setup_needed(session=session):
        return None
    return SetupForm(asks_setup_code=setup_code_required(current_settings().host))


def set_up(
    *,
    scopes: Scopes,
    organization_name: str,
    name: str,
    email: str,
    password: str,
    setup_code: str,
    ip: str | None,
    user_agent: str | None,
) -> Next:
    """`Create organization`: the organization, its first admin and their first session. The setup code is checked
    before anything else (without it nobody gets as far as bcrypt or the database), every field at once, then the
    password is hashed outside the transaction; refused once any account exists."""
    check_setup_code(host=current_settings().host, entered=setup_code)
    auth.validate_first_admin(organization_name=organization_name, name=name, email=email, password=password)
    password_hash = auth.hash_password(password)
    with scopes.write() as session:
        user = auth.create_first_admin(
            session=session,
            organization_name=organization_name,
            name=name,
            email=email,
            password_hash=password_hash,
            ip=ip,
        )
        return session_started(sessions.start(session=session, user=user, ip=ip, user_agent=user_agent))
