"""Keys derived from the server secret: Fernet for stored API keys, a separate one for session signing."""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.config import current_settings, resolve_secret_key
from services.errors import ServiceError

UNDECRYPTABLE = "This key cannot be decrypted with the server's current secret. Rotate the key to issue a new one."


def derive_key(secret: str, purpose: str) -> bytes:
    """32 bytes for one purpose; different purposes never share key material."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b'cx-toolbox-dashboard', info=purpose.encode())
    return hkdf.derive(secret.encode())


@cache
def _fernet_for(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive_key(secret, 'api-key-encryption')))


def fernet() -> Fernet:
    return _fernet_for(resolve_secret_key(current_settings()))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # The server secret (CXT_SECRET_KEY or the generated one in the data dir) changed since it was stored.
        raise ServiceError(UNDECRYPTABLE) from exc


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()


def session_secret(secret: str) -> str:
    return base64.urlsafe_b64encode(derive_key(secret, 'session-signing')).decode()
