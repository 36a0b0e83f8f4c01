"""The API fuzzed from its own OpenAPI schema (`/api/schema/`) by schemathesis, against the
production server: every operation the schema lists (the REST API, and the gateway's as soon
as its schema lists them), bounded examples, all checks.

What must hold (issue 14): no server error (5xx from Auterity itself) and no status code or
content type the schema does not document. The other checks' findings are printed with the
report, not asserted: the data-acceptance heuristics (a schema-valid request refused, e.g.
naming a provider that does not exist; a schema-violating one accepted, e.g. a filter ignoring
a bad value: the schema cannot express every rule) and bodies that differ from their schema.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 10  # per operation and phase: enough to find a class of bug, quick in CI
# not_a_server_error, status_code_conformance, content_type_conformance
REQUIRED = {"ST101": "server error", "ST103": "undocumented status", "ST105": "undocumented type"}


def test_the_schema_fuzzed_finds_no_server_error_and_no_undocumented_answer(
    web_server, demo_catalogue, django_user_model, tmp_path
):
    admin = django_user_model.objects.create_superuser("fuzz", "fuzz@example.com", "pw-fuzz-123")
    _, key = api_key_create(user=admin, name="fuzz", scopes=["routing:manage", "ai:execute"])
    server = web_server(workers=1, RATE_LIMIT_PER_MINUTE="0", RATE_LIMIT_PER_HOUR="0")
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [str(st), "run", f"{server.url}/api/schema/?format=json",
         "-H", f"Authorization: Bearer {key}",
         "--checks", "all", "--max-examples", str(EXAMPLES), "--workers", "1",
         "--request-timeout", "60", "--generation-database", "none", "--seed", "14",
         "--no-color"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    report = run.stdout + run.stderr
    print(report)  # shown when the test fails: every failure with its curl command
    summary = report[report.rfind("SUMMARY") :]
    assert "Tested:" in summary, report[-3000:]
    failures = dict(re.findall(r"(ST\d{3}) [^\n:]*: (\d+)", summary))
    broken = {code: failures[code] for code in REQUIRED if code in failures}
    assert not broken, f"schemathesis: {broken} of {failures} (the report is above)"
    assert "Errors:" not in summary, summary
    assert "Traceback" not in server.log_text(), server.log_text()[-5000:]
