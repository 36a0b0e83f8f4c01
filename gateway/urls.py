from django.urls import path

from . import views as gateway_views

openai_urlpatterns = [
    path("chat/completions", gateway_views.chat_completions, name="openai-chat-completions"),
    path("models", gateway_views.list_models, name="openai-models"),
]

native_urlpatterns = [
    path("ai/execute", gateway_views.execute, name="ai-execute"),
    path("routing/simulate", gateway_views.simulate, name="routing-simulate"),
]
