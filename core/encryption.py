"""Encryption at rest for secrets (provider API keys, sensitive policy data).

Fernet (AES-128-CBC + HMAC) through MultiFernet: the first key of FIELD_ENCRYPTION_KEYS
encrypts, every key decrypts, so keys rotate by prepending a new one and running
`manage.py rotate_encryption_keys`.
"""

import base64
import hashlib
import json
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


def _try_decrypt(value: str) -> str | None:
    """The plaintext of a token made with our keys, or None for anything else."""
    if not value.startswith("gAAAAA"):  # every Fernet token starts with its version byte 0x80
        return None
    try:
        return _fernet().decrypt(value.encode()).decode()
    except (InvalidToken, ValueError):
        return None


class EncryptedFieldMixin:
    """What encrypted fields share: the column holds a Fernet token, Python the plaintext.

    `manage.py dumpdata` writes the token, not the plaintext (`value_to_string`), and
    `loaddata` turns it back (`to_python`), so fixtures and backups never carry secrets in
    clear. `manage.py rotate_encryption_keys` finds every field with this mixin.
    """

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj)) or ""


class EncryptedTextField(EncryptedFieldMixin, models.TextField):
    """A text column holding a Fernet token; Python sees the plaintext.

    Empty strings stay empty (no secret set). The database only ever holds ciphertext.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def to_python(self, value):
        if isinstance(value, str) and value:
            plain = _try_decrypt(value)
            if plain is not None:
                return plain
        return super().to_python(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)


class EncryptedJSONField(EncryptedFieldMixin, models.TextField):
    """A JSON value stored as one Fernet token (the seed's "encrypt sensitive routing data").

    Empty values ({} , [], None) are stored as "" so "nothing set" needs no key to read.
    Nothing inside can be queried in SQL, which is the point.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if not value:
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str):
            if not value:
                return {}
            plain = _try_decrypt(value)
            try:
                return json.loads(plain if plain is not None else value)
            except json.JSONDecodeError as exc:
                from django.core.exceptions import ValidationError

                raise ValidationError(f"Not valid JSON: {exc}") from exc
        return value

    def get_prep_value(self, value):
        if value in (None, "", {}, []):
            return ""
        return encrypt(json.dumps(value, sort_keys=True, separators=(",", ":")))
