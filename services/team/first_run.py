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

from services.errors import ValidationFailed

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
