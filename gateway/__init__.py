"""The gateway: the data plane applications call (`/v1/...`, `/api/ai/...`), on top of every
other app: it authenticates (accounts), decides (routing), calls providers (providers) and
records (analytics)."""
