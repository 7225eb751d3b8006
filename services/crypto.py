"""Keys derived from the server secret: Fernet for stored API keys, a separate one for session signing."""

import base64
import hashlib
import hmac
from functools import cache
from typing import TYPE_CHECKING

from services.config import current_settings, resolve_secret_key
from services.errors import ServiceError

if TYPE_CHECKING:  # `cryptography` (~8 MB resident) loads on the first encrypt or decrypt, not at start-up
    from cryptography.fernet import Fernet

UNDECRYPTABLE = "This key cannot be decrypted with the server's current secret. Rotate the key to issue a new one."


def derive_key(secret: str, purpose: str) -> bytes:
    """32 bytes for one purpose; different purposes never share key material.

    HKDF-SHA256 (RFC 5869) with 32 bytes of output is one extract and one expand block, written out with the standard
    library; tests/services/test_crypto.py checks it against `cryptography`'s HKDF byte for byte.
    """
    pseudo_random_key = hmac.digest(b'cx-toolbox-dashboard', secret.encode(), 'sha256')
    return hmac.digest(pseudo_random_key, purpose.encode() + b'\x01', 'sha256')


@cache
def _fernet_for(secret: str) -> 'Fernet':
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(derive_key(secret, 'api-key-encryption')))


def fernet() -> 'Fernet':
    return _fernet_for(resolve_secret_key(current_settings()))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # The server secret (CXT_SECRET_KEY or the generated one in the data dir) changed since it was stored.
        raise ServiceError(UNDECRYPTABLE) from exc


@cache
def _purpose_key(secret: str, purpose: str) -> bytes:
    return derive_key(secret, purpose)


def keyed_digest(purpose: str, message: str) -> str:
    """HMAC-SHA256 of `message` (hex) under the server secret's key for `purpose`."""
    key = _purpose_key(resolve_secret_key(current_settings()), purpose)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed(value: str, purpose: str) -> str:
    """`value` and its HMAC for `purpose` (a cookie, a query parameter): one the server did not issue is refused by
    `unsigned` before any database lookup."""
    return f'{value}.{keyed_digest(purpose, value)}'


def unsigned(signed_value: str | None, purpose: str) -> str | None:
    """The value inside `signed(value, purpose)`, or None when it is missing or its signature is wrong."""
    value, _, signature = (signed_value or '').rpartition('.')
    if not value or not hmac.compare_digest(signature, keyed_digest(purpose, value)):
        return None
    return value


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()


def session_secret(secret: str) -> str:
    return base64.urlsafe_b64encode(derive_key(secret, 'session-signing')).decode()
