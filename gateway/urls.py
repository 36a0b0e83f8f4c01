from django.urls import path, re_path

from . import views as gateway_views

openai_urlpatterns = [
    path("chat/completions", gateway_views.chat_completions, name="openai-chat-completions"),
    path("embeddings", gateway_views.embeddings, name="openai-embeddings"),
    path("models", gateway_views.list_models, name="openai-models"),
    # `path`: model ids may contain "/" (e.g. "meta-llama/Llama-3.3-70B-Instruct").
    path("models/<path:model>", gateway_views.retrieve_model, name="openai-model"),
    path("messages", gateway_views.messages, name="anthropic-messages"),
    path("messages/count_tokens", gateway_views.count_tokens, name="anthropic-count-tokens"),
]

# After every /v1/ route: any other /v1/ path is OpenAI's JSON 404, whatever the method and
# whatever DEBUG says (handler404 serves only with DEBUG off).
openai_fallback_urlpatterns = [
    re_path(r"^(?P<path>.*)$", gateway_views.unknown_path, name="openai-unknown-path"),
]

native_urlpatterns = [
    path("ai/execute", gateway_views.execute, name="ai-execute"),
    path("routing/simulate", gateway_views.simulate, name="routing-simulate"),
]
