"""What a simulated model "answers": deterministic text, tool calls and token counts.

The rules are the same for every wire format so that a gateway's cost accounting can be
checked exactly:

- prompt tokens = ceil(characters of all text in the system prompt and messages / 4), >= 1;
- completion tokens = the request's max-tokens field if given, else 16;
- the answer is that many words of lorem ipsum (one token each);
- a tool is called instead when the request offers tools and either forces one (OpenAI
  `tool_choice` "required" or a named function, Anthropic `{"type": "any"|"tool"}`, Gemini
  mode "ANY") or, with the choice left automatic, the last user message mentions a tool by
  name. The arguments fill the tool's JSON schema with placeholder values.
"""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass

DEFAULT_COMPLETION_TOKENS = 16

_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum dolore eu fugiat nulla pariatur excepteur sint occaecat "
    "cupidatat non proident sunt in culpa qui officia deserunt mollit anim id est laborum"
)
_WORDS = tuple(_LOREM.split(" "))


class RequestInvalid(Exception):
    """The request breaks the provider's API rules; rendered in that provider's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        details: list | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.details = details


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


@dataclass(frozen=True)
class Generation:
    """One simulated answer, independent of the wire format it is sent in."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    tool_call: ToolCall | None = None
    stream: bool = False
    # OpenAI only: stream_options.include_usage asked for a final usage chunk.
    include_usage: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def words(self) -> tuple[str, ...]:
        return lorem_words(self.completion_tokens)

    @property
    def text(self) -> str:
        return lorem_text(self.completion_tokens)


@functools.lru_cache(maxsize=256)
def lorem_words(count: int) -> tuple[str, ...]:
    """`count` words, each after the first with its leading space, so they join to the text."""
    words = [_WORDS[i % len(_WORDS)] for i in range(count)]
    return tuple(w if i == 0 else " " + w for i, w in enumerate(words))


@functools.lru_cache(maxsize=256)
def lorem_text(count: int) -> str:
    return "".join(lorem_words(count))


def prompt_tokens_for(characters: int) -> int:
    return max(1, -(-characters // 4))


def random_id(length: int) -> str:
    """Random [A-Za-z0-9] id; ids only need to look like the provider's, not be secret."""
    # base64 of `length` bytes has 4/3 * length characters, enough after dropping "+/=".
    encoded = base64.b64encode(os.urandom(length)).translate(None, b"+/=")
    return encoded[:length].decode()


def max_tokens_field(body: dict, *names: str, param_style: str = "openai") -> int:
    """The first present max-tokens field of `body`, validated, else the default."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestInvalid(400, _type_message(param_style, name), param=name)
        if value < 1:
            raise RequestInvalid(400, _min_message(param_style, name, value), param=name)
        return value
    return DEFAULT_COMPLETION_TOKENS


def _type_message(style: str, name: str) -> str:
    if style == "anthropic":
        return f"{name}: Input should be a valid integer"
    return f"Invalid type for '{name}': expected an integer."


def _min_message(style: str, name: str, value: int) -> str:
    if style == "anthropic":
        return f"{name}: Input should be greater than or equal to 1"
    return (
        f"Invalid '{name}': integer below minimum value. "
        f"Expected a value >= 1, but got {value} instead."
    )


def placeholder_for_schema(schema, depth: int = 0):
    """A value that satisfies the common parts of a JSON schema (type, enum, required)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict):
            return {}
        wanted = schema.get("required") or list(properties)
        return {
            key: placeholder_for_schema(properties.get(key), depth + 1)
            for key in wanted
            if isinstance(key, str)
        }
    return {
        "string": "lorem",
        "integer": 1,
        "number": 1,
        "boolean": True,
        "array": [],
    }.get(kind)


def choose_tool(
    tools: list[tuple[str, dict]], forced: bool, forced_name: str | None, last_user_text: str
) -> ToolCall | None:
    """Pick the tool to call, or None for a text answer (rules in the module docstring)."""
    if not tools:
        return None
    by_name = dict(tools)
    if forced:
        name = forced_name if forced_name in by_name else tools[0][0]
    else:
        name = next((n for n, _ in tools if n and n in last_user_text), None)
        if name is None:
            return None
    return ToolCall(name=name, arguments=placeholder_for_schema(by_name[name]) or {})
