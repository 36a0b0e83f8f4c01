from decimal import Decimal

import factory

from providers.models import Provider, ProviderModel


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"provider-{n}")
    name = factory.LazyAttribute(lambda o: o.id.title())
    type = "openai"
    capacity = 100
    config = factory.LazyAttribute(lambda o: {"base_url": f"http://127.0.0.1:9100/{o.id}"})
    api_key = "sk-test-provider-secret"


class ProviderModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderModel

    provider = factory.SubFactory(ProviderFactory)
    model = factory.Sequence(lambda n: f"model-{n}")
    input_price = Decimal("0.000001")
    output_price = Decimal("0.000004")
    context_window = 128000
    max_output_tokens = 16384
    supports_tools = True
    is_default = True
