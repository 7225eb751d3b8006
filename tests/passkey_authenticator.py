"""A passkey authenticator in software, for tests: it makes and signs like a real one (P-256 keys, `none`
attestation, a signature counter, user verification), so the services are tested without a browser."""

import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url


class SoftAuthenticator:
    """A passkey authenticator in software: one P-256 key per credential, a signature counter, user verification."""

    def __init__(self, *, origin: str = 'https://dash.example.com') -> None:
        self.origin = origin
        self.keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self.handles: dict[bytes, str] = {}
        self.rp_ids: dict[bytes, str] = {}
        self.counter = 0

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        credential_id = os.urandom(32)
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[credential_id] = key
        self.handles[credential_id] = options['user']['id']
        rp_id = options['rp']['id']
        self.rp_ids[credential_id] = rp_id
        numbers = key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, 'big'), -3: numbers.y.to_bytes(32, 'big')}
        attested = bytes(16) + len(credential_id).to_bytes(2, 'big') + credential_id + cbor2.dumps(cose)
        auth_data = self._auth_data(rp_id, flags=0x45, counter=0) + attested  # user present, verified; attested data
        client_data = self._client_data('webauthn.create', options['challenge'])
        return {
            'id': bytes_to_base64url(credential_id),
            'rawId': bytes_to_base64url(credential_id),
            'type': 'public-key',
            'clientExtensionResults': {},
            'response': {
                'clientDataJSON': bytes_to_base64url(client_data),
                'attestationObject': bytes_to_base64url(
                    cbor2.dumps({'fmt': 'none', 'attStmt': {}, 'authData': auth_data})
                ),
                'transports': ['internal', 'hybrid'],
            },
        }

    def get(self, options: dict[str, Any], *, counter: int | None = None, verified: bool = True) -> dict[str, Any]:
        """Sign the challenge with the only (or first) credential for the options' RP, like a discoverable login."""
        credential_id = next(cid for cid, rp in self.rp_ids.items() if rp == options['rpId'])
        self.counter = self.counter + 1 if counter is None else counter
        auth_data = self._auth_data(options['rpId'], flags=0x05 if verified else 0x01, counter=self.counter)
        client_data = self._client_data('webauthn.get', options['challenge'])
        signature = self.keys[credential_id].sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            'id': bytes_to_base64url(credential_id),
            'rawId': bytes_to_base64url(credential_id),
            'type': 'public-key',
            'clientExtensionResults': {},
            'response': {
                'clientDataJSON': bytes_to_base64url(client_data),
                'authenticatorData': bytes_to_base64url(auth_data),
                'signature': bytes_to_base64url(signature),
                'userHandle': self.handles[credential_id],
            },
        }

    def _auth_data(self, rp_id: str, *, flags: int, counter: int) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + counter.to_bytes(4, 'big')

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({'type': kind, 'challenge': challenge, 'origin': self.origin, 'crossOrigin': False}).encode()
