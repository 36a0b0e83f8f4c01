"""The gateway's paths in Django's URLconf. Under the web server (ASGI) auterity/asgi.py hands
them to gateway/app.py before Django sees them; these entries serve them inside Django (the
test client, live servers, runserver) through the same application (gateway/bridge.py), and
name them for reverse(). The dry run is an ordinary Django view."""

from django.urls import path, re_path

from . import bridge
from . import views as gateway_views

openai_urlpatterns = [
    path("chat/completions", bridge.serve, name="openai-chat-completions"),
    path("embeddings", bridge.serve, name="openai-embeddings"),
    path("models", bridge.serve, name="openai-models"),
    # `path`: model ids may contain "/" (e.g. "meta-llama/Llama-3.3-70B-Instruct").
    path("models/<path:model>", bridge.serve, name="openai-model"),
    path("messages", bridge.serve, name="anthropic-messages"),
    path("messages/count_tokens", bridge.serve, name="anthropic-count-tokens"),
]

# After every /v1/ route: any other /v1/ path is the application's JSON 404, whatever the method
# and whatever DEBUG says (handler404 serves only with DEBUG off).
openai_fallback_urlpatterns = [
    re_path(r"^(?P<path>.*)$", bridge.serve, name="openai-unknown-path"),
]

native_urlpatterns = [
    path("ai/execute", bridge.serve, name="ai-execute"),
    path("routing/simulate", gateway_views.simulate, name="routing-simulate"),
]
