"""Writes of the analytics app: the request log, its rollups, and retention.

The rollup is SQL from end to end: one GROUP BY over the request log into a temporary table
(one row per period, policy and provider, with its latency histogram), an upsert of only the
rows whose figures changed, and a delete of the rows in the window that the log no longer
supports. Recomputing the recent periods on every
run is what makes it correct for rows that arrive late, and the changed-rows-only upsert is
what makes running it twice change nothing (docs/jobs.md).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from core.request_context import current_client_request_id
from providers.models import ProviderHealthCheck

from .choices import RequestStatus
from .log_writer import RequestLogWriter, request_log_writer
from .models import LATENCY_BUCKETS, RequestLog, latency_key

logger = logging.getLogger(__name__)

# Serialises rollups on PostgreSQL (two overlapping upserts of the same rows could deadlock).
_ROLLUP_LOCK_KEY = 0x617574_726F6C6C  # "aut" "roll"
_FRESH = "analytics_rollup_fresh"
_ATTEMPTS = "analytics_rollup_attempts"
# PostgreSQL's default 4 MB would spill the GROUP BY of a backfill to disk.
_POSTGRES_WORK_MEM = "64MB"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def request_log_record(**fields) -> None:
    """Write one request's row (`fields` as for `RequestLog(**fields)`). Called exactly once
    per gateway request, whatever happened.

    The row goes to this process's background writer (analytics/log_writer.py), which commits
    it within about REQUEST_LOG_BATCH_SECONDS, in one statement with the rows that arrived
    meanwhile. With REQUEST_LOG_COMMIT_BEFORE_RESPONSE this returns only once it is committed.
    """
    fields.setdefault("created_at", timezone.now())
    if "client_request_id" not in fields:
        # Django paths: the caller's X-Request-ID, kept by core/request_context.py.
        fields["client_request_id"] = current_client_request_id(fields.get("request_id", ""))
    request_log_writer().write(fields, wait=settings.REQUEST_LOG_COMMIT_BEFORE_RESPONSE)


def request_log_spool_ship() -> int:
    """Ship the request-log spool files that processes left behind (a crash, kill -9, a stop
    during a database outage); returns the rows shipped. The web processes do this too, every
    REQUEST_LOG_SPOOL_ADOPT_SECONDS; this is for a host where none is running."""
    adopter = RequestLogWriter()  # the settings of now; starts no thread
    try:
        return adopter.ship_orphans()
    finally:
        adopter.close(0)


# --- rollups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupResult:
    """What one rollup run did, for logs, the command and the task."""

    start: datetime
    end: datetime
    period_minutes: int
    groups: int  # (period, policy, provider) groups the log holds in the window
    written: int  # routing_analytics rows inserted or changed
    deleted: int  # routing_analytics rows in the window the log no longer supports
    clamped: bool  # the window was cut at the retention horizon

    def as_dict(self) -> dict:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        return data


def route_provider_sql(vendor: str, provider: str, attempts: str) -> str:
    """SQL for the provider a request counts against: the one that served it or, for a request
    that failed, the last one tried (the gateway logs no provider when every attempt failed;
    its attempts say who failed). "" when no provider was tried at all."""
    if vendor == "postgresql":
        last = f"({attempts} -> -1 ->> 'provider')"
    else:
        last = f"json_extract({attempts}, '$[#-1].provider')"
    return f"COALESCE(NULLIF({provider}, ''), {last}, '')"


def fallback_served_sql(vendor: str, provider: str, model: str, attempts: str) -> str:
    """SQL true for a request served by a fallback: its first attempt went to another
    provider or model than the one that served it (a retry of the same target is not one)."""
    if vendor == "postgresql":
        first_provider = f"({attempts} -> 0 ->> 'provider')"
        first_model = f"({attempts} -> 0 ->> 'model')"
    else:
        first_provider = f"json_extract({attempts}, '$[0].provider')"
        first_model = f"json_extract({attempts}, '$[0].model')"
    return f"({first_provider} <> {provider} OR {first_model} <> {model})"


def period_floor(moment: datetime, period_s: int) -> datetime:
    """The start of the rollup period holding `moment` (periods are aligned to the epoch)."""
    seconds = math.floor((moment - _EPOCH).total_seconds() / period_s) * period_s
    return _EPOCH + timedelta(seconds=seconds)


def retention_horizon(now: datetime | None = None) -> datetime:
    """Request-log rows older than this may already be deleted by retention."""
    now = now or timezone.now()
    return now - timedelta(days=settings.REQUEST_LOG_RETENTION_DAYS)


def analytics_rollup(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> RollupResult:
    """Recompute the rollups (routing_analytics and its latency histograms) of every period
    that overlaps [since, until).

    Defaults: `since` = now - ANALYTICS_ROLLUP_LOOKBACK_MINUTES, `until` = now, so the
    current, still filling period is included and the recent ones are recomputed for late
    rows. Periods that start before the retention horizon are never recomputed: their raw
    rows may be gone, and recomputing would destroy the rollup that outlives them.
    """
    now = now or timezone.now()
    period_s = settings.ANALYTICS_ROLLUP_PERIOD_MINUTES * 60
    since = since or now - timedelta(minutes=settings.ANALYTICS_ROLLUP_LOOKBACK_MINUTES)
    until = until or now
    start = period_floor(since, period_s)
    end = period_floor(until, period_s) + timedelta(seconds=period_s)
    horizon = retention_horizon(now)
    clamped = start < horizon
    if clamped:
        start = period_floor(horizon, period_s) + timedelta(seconds=period_s)
        logger.warning(
            "rollup window starts before the retention horizon; recomputing from %s only",
            start.isoformat(),
        )
    if end <= start:
        return RollupResult(start, end, period_s // 60, 0, 0, 0, clamped)

    sql = _RollupSql(connection.vendor, period_s)
    window = [connection.ops.adapt_datetimefield_value(v) for v in (start, end)]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in sql.session:
            cursor.execute(statement)
        if sql.lock:
            cursor.execute(sql.lock, [_ROLLUP_LOCK_KEY])
        cursor.execute(f"DROP TABLE IF EXISTS {_FRESH}")
        cursor.execute(f"DROP TABLE IF EXISTS {_ATTEMPTS}")
        cursor.execute(sql.fresh_rollups(), window)
        cursor.execute(sql.fresh_attempts(), window)
        cursor.execute(sql.merge_attempts())
        cursor.execute(sql.insert_attempt_only_rows())
        cursor.execute(f"DROP TABLE {_ATTEMPTS}")
        cursor.execute(f"SELECT COUNT(*) FROM {_FRESH}")
        groups = cursor.fetchone()[0]
        cursor.execute(sql.upsert_rollups())
        written = cursor.rowcount
        cursor.execute(sql.delete_stale_rollups(), window)
        deleted = cursor.rowcount
        cursor.execute(f"DROP TABLE {_FRESH}")
    result = RollupResult(start, end, period_s // 60, groups, written, deleted, clamped)
    logger.info(
        "analytics rollup %s..%s: %d groups, %d rows written, %d stale rows deleted",
        start.isoformat(),
        end.isoformat(),
        groups,
        written,
        deleted,
    )
    return result


_ROLLUP_FIGURES = (
    "request_count",
    "success_count",
    "error_count",
    "refused_count",
    "cancelled_count",
    "total_cost",
    "baseline_cost",
    "avg_response_time",
    "success_rate",
    "prompt_tokens",
    "completion_tokens",
    "latency_le",
    "fallback_count",
    "attempt_count",
    "attempt_error_count",
    "attempt_errors",
    "downgrade_count",
    "guard_violation_count",
)


class _RollupSql:
    """The rollup's statements for one database. Only a few fragments differ by vendor:
    period arithmetic, UUID generation, null-safe comparison and the lock."""

    def __init__(self, vendor: str, period_s: int):
        self.period_s = int(period_s)
        if vendor == "postgresql":
            self.nil_uuid = "'00000000-0000-0000-0000-000000000000'::uuid"
            self.new_uuid = "gen_random_uuid()"
            self.lock = "SELECT pg_advisory_xact_lock(%s)"
            self.session = (f"SET LOCAL work_mem = '{_POSTGRES_WORK_MEM}'",)
            self.json_object = "jsonb_build_object"
            self.empty_object = "'{}'::jsonb"
            self._distinct = "IS DISTINCT FROM"
        elif vendor == "sqlite":
            self.nil_uuid = "'00000000000000000000000000000000'"
            self.new_uuid = "lower(hex(randomblob(16)))"
            self.lock = None  # SQLite transactions here start IMMEDIATE: writers queue anyway
            self.session = ()
            self.json_object = "json_object"
            self.empty_object = "'{}'"
            self._distinct = "IS NOT"
        else:
            raise NotImplementedError(f"rollups run on PostgreSQL and SQLite, not {vendor}")
        self.vendor = vendor
        self.route_provider = route_provider_sql(vendor, "l.provider_id", "l.attempts_detail")
        self.fallback_served = fallback_served_sql(
            vendor, "l.provider_id", "l.model", "l.attempts_detail"
        )

    def group_key(self, text_expr: str) -> str:
        """A text GROUP BY key. On PostgreSQL it compares bytes ("C"), not by the database's
        locale: provider ids are ASCII, and the locale-aware sort made the 1M-row rollup
        about a quarter slower (bench/bench_rollup.py)."""
        return f'({text_expr} COLLATE "C")' if self.vendor == "postgresql" else text_expr

    def grouped(self, text_expr: str) -> str:
        """The value of a `group_key`, back in the default collation for the joins after."""
        if self.vendor == "postgresql":
            return f'({self.group_key(text_expr)} COLLATE "default")'
        return text_expr

    def period_start(self, column: str) -> str:
        p = self.period_s
        if self.vendor == "postgresql":
            return f"date_bin(make_interval(secs => {p}), {column}, TIMESTAMPTZ 'epoch')"
        # Integer division floors the epoch seconds to the period.
        return f"datetime((CAST(strftime('%%s', {column}) AS INTEGER) / {p}) * {p}, 'unixepoch')"

    def period_end(self, start_expr: str) -> str:
        if self.vendor == "postgresql":
            return f"({start_expr} + make_interval(secs => {self.period_s}))"
        return f"datetime({start_expr}, '+{self.period_s} seconds')"

    def differs(self, left: str, right: str, columns) -> str:
        return " OR ".join(f"{left}.{c} {self._distinct} {right}.{c}" for c in columns)

    def fresh_rollups(self) -> str:
        """The only pass over the log: one row per period, policy and provider."""
        s = RequestStatus
        success = f"l.status = '{s.SUCCESS}'"

        def count(condition):
            return f"COUNT(*) FILTER (WHERE {condition})"

        cumulative = ", ".join(
            f"{count(f'{success} AND l.latency <= {bound!r}')} AS le_{i}"
            for i, bound in enumerate(LATENCY_BUCKETS)
        )
        histogram = ", ".join(
            [f"'{latency_key(bound)}', g.le_{i}" for i, bound in enumerate(LATENCY_BUCKETS)]
            + [f"'{latency_key(math.inf)}', g.success_count"]
        )
        # Figures are rounded to the columns' scales, so a recomputation compares equal to
        # what is stored. Success rate: every request the client waited for counts; a period
        # with none has seen no failure.
        return f"""
            CREATE TEMP TABLE {_FRESH} AS
            SELECT g.period_start,
                   -- the policy while it exists; a deleted one's rows keep its key
                   (SELECT p.id FROM routing_policies p WHERE p.id = g.policy_id) AS policy_id,
                   g.policy_key, g.route_provider AS provider_id,
                   {self.period_end("g.period_start")} AS period_end,
                   g.request_count, g.success_count, g.error_count, g.refused_count,
                   g.cancelled_count,
                   ROUND(CAST(COALESCE(g.total_cost, 0) AS NUMERIC), 10) AS total_cost,
                   ROUND(CAST(COALESCE(g.baseline_cost, 0) AS NUMERIC), 10) AS baseline_cost,
                   ROUND(CAST(COALESCE(g.latency_sum / NULLIF(g.success_count, 0), 0)
                              AS NUMERIC), 3) AS avg_response_time,
                   COALESCE(ROUND(CAST(100.0 * g.success_count AS NUMERIC)
                                  / NULLIF(g.request_count - g.cancelled_count, 0), 2), 100)
                       AS success_rate,
                   COALESCE(g.prompt_tokens, 0) AS prompt_tokens,
                   COALESCE(g.completion_tokens, 0) AS completion_tokens,
                   {self.json_object}({histogram}) AS latency_le,
                   g.fallback_count, g.downgrade_count, g.guard_violation_count,
                   0 AS attempt_count, 0 AS attempt_error_count,
                   {self.empty_object} AS attempt_errors
            FROM (
                SELECT {self.period_start("l.created_at")} AS period_start,
                       l.policy_id AS policy_id,
                       COALESCE(l.policy_id, {self.nil_uuid}) AS policy_key,
                       {self.grouped(self.route_provider)} AS route_provider,
                       COUNT(*) AS request_count,
                       {count(success)} AS success_count,
                       {count(f"l.status = '{s.ERROR}'")} AS error_count,
                       {count(f"l.status = '{s.REFUSED}'")} AS refused_count,
                       {count(f"l.status = '{s.CANCELLED}'")} AS cancelled_count,
                       SUM(l.cost) AS total_cost,
                       SUM(l.baseline_cost) AS baseline_cost,
                       SUM(l.latency) FILTER (WHERE {success}) AS latency_sum,
                       SUM(l.prompt_tokens) AS prompt_tokens,
                       SUM(l.completion_tokens) AS completion_tokens,
                       {count(f"{success} AND {self.fallback_served}")} AS fallback_count,
                       {count("l.downgrade")} AS downgrade_count,
                       {count("l.guard_violation")} AS guard_violation_count,
                       {cumulative}
                FROM request_log l
                WHERE l.created_at >= %s AND l.created_at < %s
                GROUP BY period_start, l.policy_id, {self.group_key(self.route_provider)}
            ) AS g
        """

    def fresh_attempts(self) -> str:
        """Every upstream attempt of the window (request_log.attempts_detail), counted against
        the provider it went to: one row per period, policy and attempted provider."""
        if self.vendor == "postgresql":
            elements = (
                "CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN "
                "jsonb_typeof(l.attempts_detail) = 'array' THEN l.attempts_detail "
                "ELSE '[]'::jsonb END) AS a"
            )
            provider, outcome = "a.value ->> 'provider'", "a.value ->> 'outcome'"
            by_outcome = "jsonb_object_agg(t.outcome, t.n)"
        else:
            elements = (
                ", json_each(CASE WHEN json_type(l.attempts_detail) = 'array' "
                "THEN l.attempts_detail ELSE '[]' END) AS a"
            )
            provider = "json_extract(a.value, '$.provider')"
            outcome = "json_extract(a.value, '$.outcome')"
            by_outcome = "json_group_object(t.outcome, t.n)"
        # Sorted by outcome so that SQLite builds the object in a stable key order (an
        # unchanged period then compares equal); PostgreSQL's jsonb orders keys itself.
        return f"""
            CREATE TEMP TABLE {_ATTEMPTS} AS
            SELECT t.period_start, t.policy_id, t.policy_key, t.provider_id,
                   SUM(t.n) AS attempt_count,
                   COALESCE(SUM(t.n) FILTER (WHERE t.outcome <> 'ok'), 0) AS attempt_error_count,
                   COALESCE({by_outcome} FILTER (WHERE t.outcome <> 'ok'), {self.empty_object})
                       AS attempt_errors
            FROM (
                SELECT {self.period_start("l.created_at")} AS period_start,
                       l.policy_id AS policy_id,
                       COALESCE(l.policy_id, {self.nil_uuid}) AS policy_key,
                       {self.grouped(f"COALESCE({provider}, '')")} AS provider_id,
                       COALESCE({outcome}, '') AS outcome,
                       COUNT(*) AS n
                FROM request_log l {elements}
                WHERE l.created_at >= %s AND l.created_at < %s
                GROUP BY period_start, l.policy_id,
                         {self.group_key(f"COALESCE({provider}, '')")}, COALESCE({outcome}, '')
                ORDER BY COALESCE({outcome}, '')
            ) AS t
            GROUP BY t.period_start, t.policy_id, t.policy_key, t.provider_id
        """

    def merge_attempts(self) -> str:
        return f"""
            UPDATE {_FRESH} SET attempt_count = a.attempt_count,
                   attempt_error_count = a.attempt_error_count,
                   attempt_errors = a.attempt_errors
            FROM {_ATTEMPTS} a
            WHERE a.period_start = {_FRESH}.period_start AND a.policy_key = {_FRESH}.policy_key
              AND a.provider_id = {_FRESH}.provider_id
        """

    def insert_attempt_only_rows(self) -> str:
        """Providers that were tried but served (or failed last for) no request of the
        period: a row with their attempts and no requests."""
        zeros = ", ".join(
            [f"'{latency_key(bound)}', 0" for bound in LATENCY_BUCKETS]
            + [f"'{latency_key(math.inf)}', 0"]
        )
        return f"""
            INSERT INTO {_FRESH} (
                period_start, policy_id, policy_key, provider_id, period_end, request_count,
                success_count, error_count, refused_count, cancelled_count, total_cost,
                baseline_cost, avg_response_time, success_rate, prompt_tokens,
                completion_tokens, latency_le, fallback_count, attempt_count,
                attempt_error_count, attempt_errors, downgrade_count, guard_violation_count
            )
            SELECT a.period_start, a.policy_id, a.policy_key, a.provider_id,
                   {self.period_end("a.period_start")}, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0,
                   {self.json_object}({zeros}), 0, a.attempt_count, a.attempt_error_count,
                   a.attempt_errors, 0, 0
            FROM {_ATTEMPTS} a
            WHERE NOT EXISTS (
                SELECT 1 FROM {_FRESH} f
                WHERE f.period_start = a.period_start AND f.policy_key = a.policy_key
                  AND f.provider_id = a.provider_id
            )
        """

    def upsert_rollups(self) -> str:
        columns = ("period_end", "policy_id", *_ROLLUP_FIGURES)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
        # Rows already equal are left out before the upsert: it would lock them otherwise.
        return f"""
            INSERT INTO routing_analytics AS r (
                id, period_start, policy_key, provider_id, {", ".join(columns)}
            )
            SELECT {self.new_uuid}, f.period_start, f.policy_key, f.provider_id,
                   {", ".join(f"f.{c}" for c in columns)}
            FROM {_FRESH} f
            LEFT JOIN routing_analytics e
              ON e.period_start = f.period_start
             AND e.policy_key = f.policy_key
             AND e.provider_id = f.provider_id
            WHERE e.id IS NULL OR {self.differs("e", "f", columns)}
            ON CONFLICT (period_start, policy_key, provider_id) DO UPDATE SET {updates}
        """

    def delete_stale_rollups(self) -> str:
        return f"""
            DELETE FROM routing_analytics
            WHERE period_start >= %s AND period_start < %s
              AND NOT EXISTS (
                SELECT 1 FROM {_FRESH} f
                WHERE f.period_start = routing_analytics.period_start
                  AND f.policy_key = routing_analytics.policy_key
                  AND f.provider_id = routing_analytics.provider_id
                  AND f.period_end = routing_analytics.period_end
              )
        """


# --- retention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    request_log_deleted: int
    health_checks_deleted: int
    request_log_cutoff: datetime
    health_check_cutoff: datetime
    audit_events_deleted: int = 0
    audit_cutoff: datetime | None = None  # None: AUDIT_RETENTION_DAYS is 0, the trail is kept

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("request_log_cutoff", "health_check_cutoff", "audit_cutoff"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


def old_rows_purge(*, now: datetime | None = None, batch_size: int | None = None) -> PurgeResult:
    """Delete request-log rows older than REQUEST_LOG_RETENTION_DAYS, health-probe rows older
    than PROVIDER_PROBE_RETENTION_DAYS and, if AUDIT_RETENTION_DAYS is set, audit events older
    than that; `batch_size` rows per statement, each in its own transaction so the gateway's
    inserts never wait long. Rollups and reports are kept."""
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    log_cutoff = retention_horizon(now)
    check_cutoff = now - timedelta(days=settings.PROVIDER_PROBE_RETENTION_DAYS)
    audit_cutoff = (
        now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
        if settings.AUDIT_RETENTION_DAYS
        else None
    )
    result = PurgeResult(
        request_log_deleted=_purge_batches(
            RequestLog.objects.filter(created_at__lt=log_cutoff), batch_size
        ),
        health_checks_deleted=_purge_batches(
            ProviderHealthCheck.objects.filter(checked_at__lt=check_cutoff), batch_size
        ),
        request_log_cutoff=log_cutoff,
        health_check_cutoff=check_cutoff,
        audit_events_deleted=(
            _purge_batches(AuditEvent.objects.filter(created_at__lt=audit_cutoff), batch_size)
            if audit_cutoff
            else 0
        ),
        audit_cutoff=audit_cutoff,
    )
    logger.info(
        "retention: %d request-log rows before %s, %d health checks before %s and %d audit "
        "events before %s deleted",
        result.request_log_deleted,
        log_cutoff.isoformat(),
        result.health_checks_deleted,
        check_cutoff.isoformat(),
        result.audit_events_deleted,
        audit_cutoff.isoformat() if audit_cutoff else "(kept forever)",
    )
    return result


def _purge_batches(queryset, batch_size: int) -> int:
    model = queryset.model
    total = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        # Nothing refers to these rows, so this is one DELETE ... WHERE id IN (...).
        model.objects.filter(pk__in=ids).delete()
        total += len(ids)
        if len(ids) < batch_size:
            return total
