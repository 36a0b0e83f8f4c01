"""The seed's load scenarios as locust users (run by `python -m bench.load`, which sets the
environment below; docs/deployment.md#load-scenarios).

The seed gives each scenario a user count, a duration and a target endpoint:

    Normal Load   100 users  10 min  /api/routing/policies
    Peak Load     500 users   5 min  /api/ai/execute
    Stress Test  1000 users   2 min  /api/routing/analytics

It names no other traffic and no think times. Each scenario here sends mostly its target, and
around it the gateway traffic every deployment has (chat completions, a share streamed); think
times are ours, shorter as the load rises. Environment: AUTERITY_SCENARIO (normal, peak,
stress), AUTERITY_KEY (an API key with ai:execute and routing:view and no rate limits).
"""

from __future__ import annotations

import json
import os
import random

from locust import HttpUser, between, task

SCENARIO = os.environ.get("AUTERITY_SCENARIO", "normal")
KEY = os.environ.get("AUTERITY_KEY", "")

# scenario -> (think time range in seconds, task weights)
SCENARIOS = {
    "normal": ((1.0, 5.0), {"policies": 50, "chat": 25, "stream": 15, "execute": 10}),
    "peak": ((1.0, 3.0), {"execute": 60, "chat": 20, "stream": 15, "policies": 5}),
    "stress": ((0.5, 2.0), {"analytics": 50, "execute": 20, "chat": 20, "stream": 10}),
}
MODELS = ("gpt-4o-mini", "claude-haiku-4-5")
PROMPTS = (
    "Summarise the attached meeting notes in three bullet points.",
    "Write a polite reply declining the invitation.",
    "Classify this support ticket: my invoice shows the wrong VAT number.",
    "Translate 'the deployment finished without downtime' into French.",
)
THINK, WEIGHTS = SCENARIOS[SCENARIO]


def _messages():
    return [{"role": "user", "content": random.choice(PROMPTS)}]


class Caller(HttpUser):
    wait_time = between(*THINK)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {KEY}"

    @task(WEIGHTS.get("policies", 0))
    def policies(self):
        self.client.get("/api/routing/policies/", name="GET /api/routing/policies/")

    @task(WEIGHTS.get("analytics", 0))
    def analytics(self):
        path = random.choice(("/api/routing/analytics/", "/api/routing/analytics/summary/"))
        self.client.get(path, name=f"GET {path}")

    @task(WEIGHTS.get("execute", 0))
    def execute(self):
        body = {
            "prompt": random.choice(PROMPTS),
            "model": random.choice(MODELS),
            "metadata": {"priority": random.choice(("batch", "interactive"))},
        }
        self.client.post("/api/ai/execute", json=body, name="POST /api/ai/execute")

    @task(WEIGHTS.get("chat", 0))
    def chat(self):
        body = {"model": random.choice(MODELS), "messages": _messages(), "max_tokens": 64}
        self.client.post("/v1/chat/completions", json=body, name="POST /v1/chat/completions")

    @task(WEIGHTS.get("stream", 0))
    def stream(self):
        body = {
            "model": random.choice(MODELS),
            "messages": _messages(),
            "max_tokens": 64,
            "stream": True,
        }
        # locust times a streamed response to its headers: the time to the first event
        name = "POST /v1/chat/completions (stream, first event)"
        with self.client.post(
            "/v1/chat/completions", json=body, name=name, stream=True, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            done = False
            for line in response.iter_lines():  # the whole stream, as a client reads it
                if line == b"data: [DONE]":
                    done = True
                elif line.startswith(b"data: ") and "error" in json.loads(line[6:]):
                    response.failure("error event")
                    return
            if not done:
                response.failure("stream ended without [DONE]")
