"""The client-facing API formats the gateway speaks besides its own OpenAI shape.

Each module translates one format to and from the internal ChatRequest and the OpenAI-shaped
results and chunks every adapter returns. Pure data in, data out: no Django, no I/O, so the
same translation serves any transport and is tested without a server.
"""
