"""Personal data at rest: AES-GCM encryption, HMAC blind indexes, signing keys, masking.

All keys are derived (HKDF-SHA256) from one master secret with a distinct ``info`` label per
purpose, so that a leaked blind index key cannot decrypt and the member-code key cannot forge
a lookup. Ciphertexts carry a one-byte format version so keys can rotate later.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_FORMAT_V1 = b"\x01"


def _derive(master: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"liutong", info=label.encode()).derive(master)


class Vault:
    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the master secret needs at least 32 bytes")
        self._aead = AESGCM(_derive(master, "pii-encryption"))
        self._index_key = _derive(master, "blind-index")
        self._id_card_key = _derive(master, "id-card-hash")
        self.member_code_key = _derive(master, "member-code")

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """Encrypt ``plaintext``; ``context`` (e.g. ``"member.name"``) is bound as associated
        data so a ciphertext copied into another column does not decrypt."""
        nonce = os.urandom(12)
        return _FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def decrypt(self, blob: bytes, *, context: str) -> str:
        if blob[:1] != _FORMAT_V1:
            raise ValueError("unknown ciphertext format")
        nonce, body = blob[1:13], blob[13:]
        return self._aead.decrypt(nonce, body, context.encode()).decode()

    def blind_index(self, kind: str, normalised: str) -> str:
        """Deterministic keyed hash for equality lookup without storing the value in clear."""
        return hmac.new(self._index_key, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()

    def id_card_hash(self, normalised: str) -> str:
        return hmac.new(self._id_card_key, normalised.encode(), hashlib.sha256).hexdigest()


def load_master_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, or the one kept in ``data_dir/secret.key`` (created on first use)."""
    if configured:
        try:
            raw = bytes.fromhex(configured)
        except ValueError:
            raw = configured.encode()
        if len(raw) < 32:
            raise ValueError("LIUTONG_SECRET_KEY must hold at least 32 bytes")
        return raw
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


# --- masking: what logs, lists and exports show ---------------------------------------------


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_name(name: str) -> str:
    """张三 → 张*; 欧阳娜娜 → 欧**娜; Alice → A****."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    if name.isascii():
        return name[0] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_tail(value: str, keep: int = 4) -> str:
    """Card numbers and openids: only the last ``keep`` characters show."""
    return "*" * max(len(value) - keep, 2) + value[-keep:]


def mask_plate(plate: str) -> str:
    """浙A12345 → 浙A·***45."""
    return plate[:2] + "·" + "*" * (len(plate) - 4) + plate[-2:]
