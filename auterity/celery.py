"""The Celery application. Configuration lives in settings under the CELERY_ namespace."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")

app = Celery("auterity")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect(dispatch_uid="auterity.celery.task_prerun")
def _task_prerun(task_id=None, **kwargs):
    # Every log line of the task carries its id in `request_id` (docs/observability.md, Logs).
    from core.request_context import task_started

    task_started(task_id)


@task_postrun.connect(dispatch_uid="auterity.celery.task_postrun")
def _task_postrun(**kwargs):
    from core.request_context import task_finished

    task_finished()
