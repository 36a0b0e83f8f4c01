"""The policy admin's forms: the structured conditions/actions editor's field and widget, and
the dry-run form (a pasted request, who sends it, and the request id)."""

import json

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from accounts.models import ApiKey
from accounts.principal import Principal, principal_for_api_key, principal_for_user
from providers.adapters.types import RequestValidationError
from providers.models import Provider
from routing.decisions import simulation_request
from routing.engine.schema import actions_schema, conditions_schema
from routing.offers import catalogue_offers

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


# --- the policy editor's fields ------------------------------------------------------------


def _json_positions(text: str) -> dict[tuple, int]:
    """Offsets of every value in a JSON text, by path (a tuple of keys and list indexes).
    Only called on text that json.loads accepted."""
    decoder = json.JSONDecoder()
    positions: dict[tuple, int] = {}
    whitespace = " \t\n\r"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in whitespace:
            i += 1
        return i

    def value(i: int, path: tuple) -> int:
        i = skip(i)
        positions[path] = i
        if text[i] == "{":
            i = skip(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key, i = json.decoder.scanstring(text, skip(i) + 1)
                i = skip(i) + 1  # the colon
                i = skip(value(i, (*path, key)))
                if text[i] == "}":
                    return i + 1
                i += 1  # the comma
        if text[i] == "[":
            i = skip(i + 1)
            if text[i] == "]":
                return i + 1
            index = 0
            while True:
                i = skip(value(i, (*path, index)))
                index += 1
                if text[i] == "]":
                    return i + 1
                i += 1
        _, end = decoder.raw_decode(text, i)
        return end

    value(0, ())
    return positions


def json_error_location(text: str, message: str, root: str) -> str:
    """' (line L, column C)' for the node a `root.a.b[2]: ...` message names in `text`, or ''
    (keys may hold dots, e.g. metadata.tier: each step takes the longest key that fits)."""
    if not isinstance(text, str) or not message.startswith(root):
        return ""
    try:
        positions = _json_positions(text)
    except (ValueError, IndexError):
        return ""
    rest = message[len(root) :].split(": ", 1)[0]
    path: tuple = ()
    while rest:
        if rest.startswith("["):
            index, _, rest = rest[1:].partition("]")
            if not index.isdigit():
                return ""
            path = (*path, int(index))
            continue
        rest = rest.removeprefix(".")
        keys = [p[-1] for p in positions if p and p[:-1] == path and isinstance(p[-1], str)]
        fitting = [k for k in keys if rest == k or rest.startswith((k + ".", k + "["))]
        if not fitting:
            break
        key = max(fitting, key=len)
        path, rest = (*path, key), rest[len(key) :]
    offset = positions.get(path)
    if offset is None:
        return ""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f" (line {line}, column {column})"


class PolicyJSONField(forms.JSONField):
    """A policy's conditions or actions as an operator writes them: empty means {}, a syntax
    error says its line and column, and a form that comes back with errors shows the text as
    it was typed (Django's JSONField re-serialises it, losing the operator's layout)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        if self.disabled:
            return value
        if value in self.empty_values or (isinstance(value, str) and not value.strip()):
            return {}
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"Not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.",
                code="invalid",
            ) from exc

    def bound_data(self, data, initial):
        return initial if self.disabled else data

    def prepare_value(self, value):
        if value is None:
            return ""  # a new policy: nothing typed yet, which means {}
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class PolicyEditorWidget(forms.Textarea):
    """The structured editor of conditions or actions (routing/static/routing/
    policy_editor.js), built in the browser from the policy language's JSON Schema, with
    provider and model pickers from the catalogue and a raw-JSON toggle. The textarea is the
    form's value either way; without JavaScript it is all there is."""

    template_name = "routing/widgets/policy_editor.html"

    class Media:
        js = ["routing/policy_editor.js"]
        css = {"all": ["routing/policy_editor.css"]}

    def __init__(self, kind: str, attrs=None):
        self.kind = kind
        super().__init__(attrs={"rows": 12, "class": "vLargeTextField pe-raw", **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        offers = sorted(
            {(o.provider_id, o.model) for o in catalogue_offers()}, key=lambda o: (o[0], o[1])
        )
        providers = sorted(Provider.objects.values_list("id", flat=True))
        if self.kind == "conditions":
            schema = conditions_schema(sensitive=True)
        else:
            schema = actions_schema(
                sensitive=True, providers=providers, models=sorted({m for _, m in offers})
            )
        context["widget"].update(
            {
                "kind": self.kind,
                "schema": schema,
                "offers": [{"provider": p, "model": m} for p, m in offers],
                "providers": providers,
                "schema_id": f"{attrs.get('id', name)}_schema",
                "offers_id": f"{attrs.get('id', name)}_offers",
            }
        )
        return context
