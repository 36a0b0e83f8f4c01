"""Upstream AI providers and the models they serve, with prices."""

import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from core.encryption import EncryptedTextField
from vocabulary import Capability

from .adapters import ADAPTER_CLASSES, config_problems, provider_type_choices
from .adapters.types import ProviderEndpoint
from .choices import ProbeOutcome, ProviderStatus
from .pricing import tier_problems

logger = logging.getLogger(__name__)

PROVIDER_ID_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,99}$",
    "Use 1-100 lower-case letters, digits, '-' or '_', starting with a letter or digit.",
)

# The capabilities an operator switches per model, each a `supports_<capability>` column
# below; admin, API and filters read this. multiple_choices has no switch: it belongs to the
# wire format (the adapter), and every chat model of an adapter that carries it has it.
CAPABILITY_FIELDS = {
    cap: f"supports_{cap}" for cap in Capability if cap is not Capability.MULTIPLE_CHOICES
}


def _price_field(help_text: str, *, optional: bool = False) -> models.DecimalField:
    """A price column: USD per token, never negative; `optional` ones fall back to another."""
    return models.DecimalField(
        max_digits=16,
        decimal_places=12,
        null=optional,
        blank=optional,
        validators=[MinValueValidator(Decimal(0))],
        help_text=help_text,
    )


class Provider(models.Model):
    """An upstream AI service Auterity can send requests to (one account/endpoint).

    `config` holds connection settings (base_url, timeouts, Azure api_version/deployments...);
    the API key is kept apart, encrypted, and never returned by the API or the admin.
    `cost_per_token` is the provider's blended list price: the mean over its enabled models of
    (3 x input + 1 x output) / 4 per token, the usual 3:1 input:output blend. It is kept up to
    date from the models' prices (providers/prices.py) and only summarises them: requests are
    priced with each model's own rules.
    """

    id = models.CharField(primary_key=True, max_length=100, validators=[PROVIDER_ID_VALIDATOR])
    name = models.CharField(max_length=255)
    # The choices are the registered adapters (providers/adapters/__init__.py), read when
    # validating, so registering a type needs no migration.
    type = models.CharField(max_length=50, choices=provider_type_choices)
    cost_per_token = _price_field(
        "USD per token: the blended (3:1 input:output) list price of the provider's enabled "
        "models, kept up to date from their prices.",
        optional=True,
    )
    avg_response_time = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Seconds, measured by the health probes.",
    )
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Maximum concurrent requests Auterity sends here."
    )
    status = models.CharField(
        max_length=50, choices=ProviderStatus.choices, default=ProviderStatus.HEALTHY
    )
    config = models.JSONField(default=dict, blank=True)
    api_key = EncryptedTextField(blank=True, default="", help_text="Write-only; stored encrypted.")
    # An operator's decision, apart from `status` (the probes' finding, which they keep
    # updating): a drained provider gets no traffic at all, not even as a last resort.
    drained_at = models.DateTimeField(null=True, blank=True)
    drained_by = models.CharField(max_length=255, blank=True, default="")
    drain_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, null=True)
    updated_at = models.DateTimeField(auto_now=True, null=True)

    class Meta:
        db_table = "ai_providers"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cost_per_token__gte=0) | models.Q(cost_per_token__isnull=True),
                name="%(app_label)s_%(class)s_cost_per_token_non_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ProviderStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def base_url(self) -> str:
        return (self.config or {}).get("base_url", "")

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key)

    def endpoint(self) -> ProviderEndpoint | None:
        """How an adapter reaches this provider (key decrypted in memory), or None while it
        has no base URL."""
        config = self.config or {}
        if not config.get("base_url"):
            return None
        if self.type not in ADAPTER_CLASSES:
            # Written behind validation's back (SQL), or its adapter was removed: unreachable,
            # loudly, rather than taking the catalogue down.
            logger.error("provider %s: no adapter serves its type %r", self.id, self.type)
            return None
        return ProviderEndpoint.from_config(self.id, self.type, config, api_key=self.api_key)

    def clean(self):
        super().clean()
        config = self.config
        if not isinstance(config, dict):
            raise ValidationError({"config": "Must be a JSON object."})
        errors = config_problems(self.type, config)  # the keys its type's adapter declares
        if errors:
            raise ValidationError({"config": errors})


class ProviderModel(models.Model):
    """A model as offered by one provider, with its list prices and capabilities.

    `model` is the public name clients ask for (e.g. "gpt-4o"); `upstream_model` the name the
    provider expects (an Azure deployment, a vendor-prefixed id). One provider per model is its
    default: the route used without policies, and the baseline that savings are measured against.

    Prices are USD per token (docs/providers.md#pricing says how a call is billed): input and
    output, cached input read from the provider's prompt cache and cache writes (blank: billed
    as input), reasoning/thinking tokens (blank: billed as output), and long-context tiers.
    `sync_prices` refreshes them from the genai-prices data set unless `prices_overridden`
    says an operator set them by hand. `expected_thinking_tokens` is what the cost guard
    assumes a call spends on thinking until the request log has observed this model.
    """

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    model = models.CharField(max_length=200)
    upstream_model = models.CharField(max_length=200, blank=True)
    input_price = _price_field("USD per input token.")
    output_price = _price_field("USD per output token.")
    cached_input_price = _price_field(
        "USD per input token read from the provider's prompt cache; blank: the input price.",
        optional=True,
    )
    cache_write_price = _price_field(
        "USD per input token written to the prompt cache (Anthropic bills these); blank: the "
        "input price.",
        optional=True,
    )
    reasoning_price = _price_field(
        "USD per reasoning/thinking token; blank: the output price (how OpenAI, Anthropic and "
        "Google bill them).",
        optional=True,
    )
    price_tiers = models.JSONField(
        default=list,
        blank=True,
        help_text='Long-context tiers, e.g. [{"above_input_tokens": 200000, "input": 2.5e-06, '
        '"output": 1.5e-05}]: above the threshold every token of the call is billed at the '
        "tier's rates (USD per token); a rate a tier leaves out keeps its base value.",
    )
    prices_overridden = models.BooleanField(
        default=False,
        help_text="Prices set by hand: sync_prices leaves them alone. Set automatically when "
        "prices are edited in the admin or the API; untick to let sync_prices manage them again.",
    )
    price_source = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Where the prices came from (e.g. genai-prices 0.2.3: google/gemini-2.5-pro); "
        "blank when set by hand or by the demo seed.",
    )
    prices_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When sync_prices last changed these prices."
    )
    expected_thinking_tokens = models.PositiveIntegerField(
        default=0,
        help_text="Thinking tokens the cost guard expects per call until the request log has "
        "enough calls of this model to measure it; 0 for models that do not think.",
    )
    context_window = models.PositiveIntegerField(help_text="Maximum input tokens.")
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    supports_streaming = models.BooleanField(default=True)
    supports_tools = models.BooleanField(default=False)
    supports_vision = models.BooleanField(default=False)
    supports_json_mode = models.BooleanField(default=False)
    supports_embeddings = models.BooleanField(
        default=False, help_text="An embeddings model, served by POST /v1/embeddings."
    )
    is_default = models.BooleanField(
        default=False, help_text="This provider is the model's default route and cost baseline."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ai_provider_models"
        ordering = ["model", "provider_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model"], name="%(app_label)s_%(class)s_unique_per_provider"
            ),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(is_default=True),
                name="%(app_label)s_%(class)s_one_default_per_model",
            ),
            models.CheckConstraint(
                condition=models.Q(input_price__gte=0) & models.Q(output_price__gte=0),
                name="%(app_label)s_%(class)s_prices_non_negative",
            ),
            models.CheckConstraint(
                condition=(
                    (
                        models.Q(cached_input_price__gte=0)
                        | models.Q(cached_input_price__isnull=True)
                    )
                    & (
                        models.Q(cache_write_price__gte=0)
                        | models.Q(cache_write_price__isnull=True)
                    )
                    & (models.Q(reasoning_price__gte=0) | models.Q(reasoning_price__isnull=True))
                ),
                name="%(app_label)s_%(class)s_extra_prices_non_negative",
            ),
        ]

    def __str__(self):
        return f"{self.model} @ {self.provider_id}"

    def save(self, *args, **kwargs):
        if not self.upstream_model:
            self.upstream_model = self.model
        super().save(*args, **kwargs)

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this model can do: its `supports_<capability>` switches, plus several choices
        per request for a chat model, as far as its adapter's wire format carries them."""
        adapter = ADAPTER_CLASSES.get(self.provider.type)
        if adapter is None:
            return frozenset()  # nothing serves it (Provider.endpoint says so)
        own = {cap for cap, name in CAPABILITY_FIELDS.items() if getattr(self, name)}
        if not self.supports_embeddings:
            own.add(Capability.MULTIPLE_CHOICES)
        return frozenset(own) & adapter.capabilities

    def clean(self):
        super().clean()
        problems = tier_problems(self.price_tiers if self.price_tiers is not None else [])
        if problems:
            raise ValidationError({"price_tiers": problems})
        if self.is_default and self.model:
            others = ProviderModel.objects.filter(model=self.model, is_default=True)
            if self.pk:
                others = others.exclude(pk=self.pk)
            holder = others.values_list("provider_id", flat=True).first()
            if holder:
                raise ValidationError(
                    {"is_default": f"'{holder}' is already the default provider of {self.model}."}
                )


class ProviderHealthCheck(models.Model):
    """One health probe of one provider: its cheap model-list endpoint, timed.

    `outcome` is `ok`, `slow` (answered, but slower than PROVIDER_PROBE_SLOW_SECONDS or rate
    limited) or `failed`. The provider's status follows the recent run of outcomes with
    hysteresis (docs/jobs.md); `status_after` is what the probe left it at.
    """

    id = models.BigAutoField(primary_key=True)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="health_checks")
    checked_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=ProbeOutcome.choices)
    latency = models.FloatField(help_text="Seconds until the answer or the failure.")
    error_type = models.CharField(max_length=50, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    models_listed = models.PositiveIntegerField(default=0)
    status_before = models.CharField(max_length=20)
    status_after = models.CharField(max_length=20)

    class Meta:
        db_table = "provider_health_checks"
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(fields=["provider", "-checked_at"], name="provider_health_checks_recent"),
            models.Index(fields=["checked_at"], name="provider_health_checks_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=ProbeOutcome.values),
                name="%(app_label)s_%(class)s_outcome_valid",
            ),
        ]

    def __str__(self):
        return f"{self.checked_at:%Y-%m-%d %H:%M:%S} {self.provider_id}: {self.outcome}"
