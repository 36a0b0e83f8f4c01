"""What the catalogue says each model can do, and what the gateway does with a request that
needs what no provider of the model has: n > 1 on a provider that returns one choice is a
400 naming `n` (never silently one choice)."""

import openai
import pytest

from analytics.models import RequestLog
from providers.adapters import ADAPTER_CLASSES
from providers.models import CAPABILITY_FIELDS, ProviderModel
from routing.engine import CAPABILITIES
from vocabulary import Capability

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Hello"}]


def test_engine_adapters_and_model_columns_speak_the_one_capability_list():
    assert set(Capability) == CAPABILITIES
    for adapter in ADAPTER_CLASSES.values():
        assert adapter.capabilities <= CAPABILITIES, adapter
    # Every capability a model can be switched on or off for is a column, and every
    # supports_* column is such a capability (no column the engine cannot ask for).
    columns = {f.name for f in ProviderModel._meta.fields if f.name.startswith("supports_")}
    assert columns == set(CAPABILITY_FIELDS.values())
    assert set(CAPABILITY_FIELDS) == CAPABILITIES - {Capability.MULTIPLE_CHOICES}


def test_demo_catalogue_capabilities_are_true_to_each_adapter(demo_catalogue):
    rows = list(ProviderModel.objects.select_related("provider"))
    claude = [r for r in rows if r.provider.type == "anthropic"]
    assert claude
    for row in claude:
        # JSON mode through the forced tool; one choice per request
        assert {"json_mode", "tools", "streaming"} <= row.capabilities
        assert "multiple_choices" not in row.capabilities
    for row in rows:
        caps = row.capabilities
        if "embedding" not in row.model and row.provider.type != "anthropic":
            assert "multiple_choices" in caps  # OpenAI formats, Gemini's candidateCount
        if "embedding" in row.model:
            assert caps == {"embeddings"}
        else:
            assert {"json_mode", "streaming"} <= caps
            assert "embeddings" not in caps
    embedding_models = {(r.provider_id, r.model) for r in rows if "embeddings" in r.capabilities}
    assert embedding_models == {
        ("openai", "text-embedding-3-small"),
        ("openai", "text-embedding-3-large"),
        ("google", "gemini-embedding-001"),
    }


def test_n_above_one_for_a_one_choice_provider_is_a_400_naming_n(live_server, routed_key):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=routed_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude-haiku-4-5", messages=HELLO, n=2)
    error = info.value.body
    assert error["param"] == "n"
    assert error["code"] == "unsupported_parameter"
    assert "n=2" in error["message"]
    assert "returns several choices" in error["message"]
    (row,) = RequestLog.objects.all()  # refused before any provider was called
    assert (row.http_status, row.error_type, row.attempts) == (400, "unsupported_parameter", 0)
