"""System checks for the security settings (`manage.py check --deploy` runs the deploy ones)."""

from django.conf import settings
from django.core import checks

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"


@checks.register(checks.Tags.security)
def encryption_keys_check(app_configs, **kwargs):
    from cryptography.fernet import Fernet

    errors = []
    for index, key in enumerate(k for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()):
        try:
            Fernet(key.strip())
        except ValueError:
            errors.append(
                checks.Error(
                    f"FIELD_ENCRYPTION_KEYS entry {index + 1} is not a Fernet key.",
                    hint="Generate one with: python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'",
                    id="auterity.E001",
                )
            )
    return errors


@checks.register(checks.Tags.security, deploy=True)
def production_secrets_check(app_configs, **kwargs):
    warnings = []
    if settings.SECRET_KEY == DEV_SECRET_KEY:
        warnings.append(
            checks.Warning(
                "SECRET_KEY is the development default: sessions, CSRF tokens and JWTs can be "
                "forged.",
                hint="Set SECRET_KEY to a long random value (docs/security.md).",
                id="auterity.W001",
            )
        )
    if not any(k.strip() for k in settings.FIELD_ENCRYPTION_KEYS):
        warnings.append(
            checks.Warning(
                "FIELD_ENCRYPTION_KEYS is empty: provider secrets are encrypted with a key "
                "derived from SECRET_KEY, so changing SECRET_KEY makes them unreadable.",
                hint="Set FIELD_ENCRYPTION_KEYS, then run manage.py rotate_encryption_keys "
                "(docs/security.md).",
                id="auterity.W002",
            )
        )
    if not settings.METRICS_TOKEN:
        warnings.append(
            checks.Warning(
                "METRICS_TOKEN is empty: /metrics is readable by anyone who can reach it.",
                hint="Set METRICS_TOKEN, or keep /metrics off the public network.",
                id="auterity.W003",
            )
        )
    return warnings
