"""The provider types have one registry: the adapter classes in
`providers.adapters.ADAPTER_CLASSES`, each declaring its type, label, config options,
capabilities and price source. Everything that lists or checks provider types reads it, so
registering an adapter is all a new type needs (docs/architecture.md#adding-a-provider)."""

import re
from pathlib import Path

import pytest
from django.contrib.admin.sites import site

from providers.adapters import ADAPTER_CLASSES, config_options, provider_type_choices
from providers.adapters.openai_compatible import OpenAICompatibleAdapter
from providers.adapters.options import COMMON_OPTIONS, STRING
from providers.api.serializers import ProviderSerializer
from providers.models import Provider
from vocabulary import Capability

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs"


class AcmeAdapter(OpenAICompatibleAdapter):
    """A new wire format as an engineer adds one: the class and its line in the registry."""

    provider_type = "acme"
    label = "Acme Cloud"
    options = {"region": STRING}
    price_source = None


@pytest.fixture
def acme_registered(monkeypatch):
    monkeypatch.setitem(ADAPTER_CLASSES, "acme", AcmeAdapter)


def test_each_adapter_declares_its_own_type_once():
    for provider_type, cls in ADAPTER_CLASSES.items():
        # Declared on the class itself, not inherited from the adapter it builds on.
        assert cls.__dict__.get("provider_type") == provider_type
        assert cls.__dict__.get("label"), cls
        assert "price_source" in cls.__dict__, cls
        assert not set(cls.options) & set(COMMON_OPTIONS), cls
        assert cls.capabilities <= set(Capability)
    labels = [label for _, label in provider_type_choices()]
    assert len(set(labels)) == len(labels)


def test_the_model_the_admin_and_the_api_offer_the_registered_types(acme_registered):
    expected = [(t, cls.label) for t, cls in ADAPTER_CLASSES.items()]
    assert ("acme", "Acme Cloud") in expected
    assert list(Provider._meta.get_field("type").choices) == expected
    admin_form = site._registry[Provider].get_form(None)()
    assert [c for c in admin_form.fields["type"].choices if c[0]] == expected
    assert list(ProviderSerializer().fields["type"].choices.items()) == expected


def test_a_registered_type_is_created_and_validated_by_its_declared_options(
    acme_registered, admin_client_api
):
    # given: a provider of the new type with the option its adapter declares
    payload = {
        "id": "acme-eu",
        "name": "Acme EU",
        "type": "acme",
        "config": {"base_url": "http://127.0.0.1:9/v1", "region": "eu-west"},
    }
    # when
    created = admin_client_api.post("/api/providers/", payload, format="json")
    # then
    assert created.status_code == 201, created.json()
    provider = Provider.objects.get(id="acme-eu")
    assert provider.endpoint().options["region"] == "eu-west"
    # An option another type declares is not one of this type's.
    payload = {**payload, "id": "acme-us", "config": {**payload["config"], "organization": "o"}}
    refused = admin_client_api.post("/api/providers/", payload, format="json")
    assert refused.status_code == 400
    assert any("config.organization: unknown key" in m for m in refused.json()["config"])


def test_options_are_checked_per_type():
    def problems(provider_type, **config):
        provider = Provider(id="p", name="p", type=provider_type, config=config)
        try:
            provider.full_clean()
        except Exception as exc:  # ValidationError
            return exc.message_dict.get("config", [])
        return []

    url = "http://127.0.0.1:9"
    assert problems("openai", base_url=url, organization="org", project="p") == []
    assert problems("anthropic", base_url=url, anthropic_version="2023-06-01") == []
    assert problems("anthropic", base_url=url, organization="org") == [
        "config.organization: unknown key (allowed: " + ", ".join(config_options("anthropic")) + ")"
    ]
    assert problems("azure_openai", base_url=url) == [
        "config.api_version: required for Azure OpenAI"
    ]
    assert problems("openai_compatible", base_url=url, stream_usage="no") == [
        "config.stream_usage: must be true or false"
    ]


def test_a_row_of_a_type_no_adapter_serves_is_unreachable_not_fatal(caplog):
    # given: a row only SQL could write (or whose adapter was removed)
    Provider.objects.create(id="gone", name="Gone", type="cohere", config={"base_url": "http://x"})
    # when / then
    assert Provider.objects.get(id="gone").endpoint() is None
    assert "no adapter serves its type 'cohere'" in caplog.text


def _table_first_cells(markdown: str, heading: str) -> set[str]:
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.MULTILINE))


def test_the_docs_describe_every_registered_type_and_option():
    providers_md = (DOCS / "providers.md").read_text()
    configuration_md = (DOCS / "configuration.md").read_text()
    types = set(ADAPTER_CLASSES)
    # docs/providers.md: a row per type in the wire-format table, a column in the support one
    assert _table_first_cells(providers_md, "# Providers") == types
    support_header = providers_md.split("## What each adapter supports", 1)[1]
    header_row = next(line for line in support_header.splitlines() if line.startswith("| |"))
    assert set(re.findall(r"`([a-z0-9_]+)`", header_row)) == types
    # docs/configuration.md: the types, and a row for every config key any type accepts
    types_sentence = configuration_md.split("a `type` that selects", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", types_sentence)) == types
    keys = {key for provider_type in types for key in config_options(provider_type)}
    config_rows = configuration_md.split("## Providers", 1)[1].split("\n\n| key |", 1)[1]
    documented = set()
    for row in re.findall(r"^\| ([^|]+) \|", config_rows.split("\n\n", 1)[0], re.MULTILINE):
        documented |= set(re.findall(r"`([a-z_]+)`", row))
    assert documented == keys
