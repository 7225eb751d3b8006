"""The key derivation is HKDF-SHA256 exactly: secrets stored before it moved to the standard library still open."""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services import crypto


@pytest.mark.parametrize('purpose', ['api-key-encryption', 'session-signing', 'invitation-links'])
@pytest.mark.parametrize('secret', ['s3cret', 'x' * 200, 'ünïcode secret'])
def test_derive_key_is_hkdf_sha256(secret: str, purpose: str) -> None:
    reference = HKDF(algorithm=hashes.SHA256(), length=32, salt=b'cx-toolbox-dashboard', info=purpose.encode())
    assert crypto.derive_key(secret, purpose) == reference.derive(secret.encode())


def test_purposes_never_share_key_material() -> None:
    assert crypto.derive_key('s3cret', 'api-key-encryption') != crypto.derive_key('s3cret', 'session-signing')
