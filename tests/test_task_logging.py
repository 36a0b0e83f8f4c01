"""Log lines written inside a Celery task carry the task's id as `request_id`."""

import logging

from celery import shared_task

from core.logs import RequestIdFilter
from core.request_context import current_request_id


@shared_task(name="tests.report_request_id")
def report_request_id():
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "inside the task", None, None)
    RequestIdFilter().filter(record)
    return current_request_id(), record.request_id


def test_a_tasks_log_lines_carry_its_id_and_nothing_leaks_after_it():
    result = report_request_id.apply(task_id="task-7f3a")
    assert tuple(result.get()) == ("task-7f3a", "task-7f3a")
    assert current_request_id() is None
