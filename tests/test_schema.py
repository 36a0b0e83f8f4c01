"""The seed's three tables exist with the seed's columns (PostgreSQL only: information_schema)."""

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="checks PostgreSQL's catalog"),
]

SEED_COLUMNS = {
    "routing_policies": {
        "id": "uuid",
        "name": "character varying",
        "conditions": "jsonb",
        "actions": "jsonb",
        "status": "character varying",
        "priority": "integer",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "ai_providers": {
        "id": "character varying",
        "name": "character varying",
        "type": "character varying",
        "cost_per_token": "numeric",
        "avg_response_time": "numeric",
        "capacity": "integer",
        "status": "character varying",
        "config": "jsonb",
    },
    "routing_analytics": {
        "id": "uuid",
        "policy_id": "uuid",
        "provider_id": "character varying",
        "request_count": "integer",
        "total_cost": "numeric",
        "avg_response_time": "numeric",
        "success_rate": "numeric",
        "period_start": "timestamp with time zone",
        "period_end": "timestamp with time zone",
    },
}


@pytest.mark.parametrize("table", sorted(SEED_COLUMNS))
def test_seed_table_has_seed_columns(table):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
            [table],
        )
        columns = dict(cursor.fetchall())
    for column, data_type in SEED_COLUMNS[table].items():
        assert columns.get(column) == data_type, (table, column, columns.get(column))


def test_provider_id_is_varchar_100_and_analytics_references_policies():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_name = 'ai_providers' AND column_name = 'id'"
        )
        assert cursor.fetchone()[0] == 100
        cursor.execute(
            """
            SELECT ccu.table_name, ccu.column_name
            FROM information_schema.table_constraints tc
            JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name
            JOIN information_schema.constraint_column_usage ccu
              ON tc.constraint_name = ccu.constraint_name
            WHERE tc.table_name = 'routing_analytics' AND tc.constraint_type = 'FOREIGN KEY'
              AND kcu.column_name = 'policy_id'
            """
        )
        assert cursor.fetchone() == ("routing_policies", "id")
