"""Re-encrypt every encrypted value with the first key of FIELD_ENCRYPTION_KEYS.

Rotation (docs/security.md): put the new key first, keep the old ones after it, deploy, run
this, then drop the old keys. Values are rewritten in SQL inside one transaction: either every
value is re-encrypted or none is (a value no key can decrypt stops the run).
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from core import encryption


def encrypted_columns():
    """(model, field) for every encrypted field of every installed model."""
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, encryption.EncryptedFieldMixin):
                yield model, field


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="only check that every value decrypts with the configured keys; change nothing",
        )

    def handle(self, *args, check=False, **options):
        encryption.reset_key_cache()
        quote = connection.ops.quote_name
        total = 0
        with transaction.atomic():
            for model, field in encrypted_columns():
                table, column = quote(model._meta.db_table), quote(field.column)
                pk = quote(model._meta.pk.column)
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> ''")
                    rows = cursor.fetchall()
                rotated = []
                for key, token in rows:
                    try:
                        rotated.append((encryption.rotate(token), key))
                    except Exception as exc:
                        raise CommandError(
                            f"{model._meta.label}.{field.name} of {key!r} cannot be decrypted "
                            "with FIELD_ENCRYPTION_KEYS; nothing was changed. Add the key it "
                            "was encrypted with (after the new one) and run again."
                        ) from exc
                if rotated and not check:
                    with connection.cursor() as cursor:
                        cursor.executemany(
                            f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", rotated
                        )
                total += len(rotated)
                self.stdout.write(f"{model._meta.label}.{field.name}: {len(rotated)} values")
        verb = "decrypt with the configured keys" if check else "re-encrypted with the first key"
        self.stdout.write(self.style.SUCCESS(f"{total} values {verb}."))
