"""The policy admin's dry-run form: a pasted request, who sends it, and the request id."""

import json

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from accounts.models import ApiKey
from accounts.principal import Principal, principal_for_api_key, principal_for_user
from providers.adapters.types import RequestValidationError
from routing.decisions import simulation_request

EXAMPLE_REQUEST = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Summarise this contract in five bullet points."}],
    "max_tokens": 400,
    "metadata": {"priority": "interactive"},
}


def json_object(text: str, not_an_object: str) -> dict:
    """`text` parsed as a JSON object, else a ValidationError (`not_an_object` for valid JSON
    of another type)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"Not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValidationError(not_an_object)
    return value


class SimulationForm(forms.Form):
    """What `routing.decisions.request_simulate` needs, as an operator types it.

    The request is parsed exactly as POST /api/routing/simulate parses it, so a body that the
    API refuses is refused here with the same message (naming the offending field).
    """

    request_json = forms.CharField(
        label="Request (JSON)",
        initial=json.dumps(EXAMPLE_REQUEST, indent=2),
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90, "style": "font-family: monospace"}),
        help_text="An OpenAI chat body (model, messages, max_tokens, stream, tools...) or the "
        "native one (prompt or messages, optional model, system, metadata).",
    )
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"),
        required=False,
        label="Simulate as user",
        help_text="Empty: yourself. Groups decide caller.groups and the routing_policies flag.",
    )
    api_key = forms.ModelChoiceField(
        queryset=ApiKey.objects.select_related("user").order_by("name"),
        required=False,
        label="... or as API key",
        help_text="The key's owner, plus the key's name and team (caller.api_key, caller.team).",
    )
    headers_json = forms.CharField(
        label="Headers (JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 90, "style": "font-family: monospace"}),
        help_text='For header.<name> conditions, e.g. {"X-Tenant": "acme"}.',
    )
    request_id = forms.CharField(
        label="Request id",
        required=False,
        max_length=64,
        help_text="The cost_optimization sample is drawn per request id: give a logged "
        "request's id to see its decision again. Empty: a new id.",
    )

    def clean_request_json(self):
        text = self.cleaned_data["request_json"]
        body = json_object(text, "The request must be a JSON object.")
        try:
            self.cleaned_data["chat_request"] = simulation_request(body)
        except RequestValidationError as exc:
            where = f"{exc.param}: " if exc.param else ""
            raise ValidationError(f"{where}{exc.message}") from exc
        return text

    def clean_headers_json(self):
        text = self.cleaned_data["headers_json"].strip()
        if not text:
            return {}
        not_headers = 'Give an object of header names to string values: {"X-A": "b"}.'
        headers = json_object(text, not_headers)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ValidationError(not_headers)
        return headers

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("user") and cleaned.get("api_key"):
            raise ValidationError("Simulate as a user or as an API key, not both.")
        return cleaned

    def principal(self, operator) -> Principal:
        """Who the simulated request comes from: the chosen key or user, else the operator."""
        if self.cleaned_data.get("api_key"):
            return principal_for_api_key(self.cleaned_data["api_key"])
        return principal_for_user(self.cleaned_data.get("user") or operator)
