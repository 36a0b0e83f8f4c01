"""Encryption at rest for secrets (provider API keys, sensitive policy data).

Fernet (AES-128-CBC + HMAC) through MultiFernet: the first key of FIELD_ENCRYPTION_KEYS
encrypts, every key decrypts, so keys rotate by prepending a new one and running
`manage.py rotate_encryption_keys`.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]
    if not keys:
        # Development default only: derived from SECRET_KEY so a fresh checkout works.
        digest = hashlib.sha256(b"auterity-field-encryption:" + settings.SECRET_KEY.encode())
        keys = [base64.urlsafe_b64encode(digest.digest()).decode()]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be comma-separated url-safe base64 32-byte Fernet keys"
        ) from exc


def reset_key_cache() -> None:
    """Forget the cached keys (after settings change, e.g. in tests or key rotation)."""
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS "
            "(was a key removed before rotate_encryption_keys ran?)"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the current primary key."""
    return _fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python sees the plaintext.

    Empty strings stay empty (no secret set). The database only ever holds ciphertext.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)
