"""What a simulated model "answers": deterministic text, tool calls and token counts.

The rules are the same for every wire format so that a gateway's cost accounting can be
checked exactly:

- prompt tokens = ceil(characters of all text in the system prompt and messages / 4), >= 1;
- completion tokens = the request's max-tokens field if given, else 16;
- the answer is that many words of lorem ipsum (one token each);
- a tool is called instead when the request offers tools and either forces one (OpenAI
  `tool_choice` "required" or a named function, Anthropic `{"type": "any"|"tool"}`, Gemini
  mode "ANY") or, with the choice left automatic, the last user message mentions a tool by
  name. The arguments are a deterministic instance of the tool's JSON schema (instances.py);
- stop sequences cut the text before the first one (text_output);
- in JSON mode the answer is an instance of the requested schema (or a small object), its
  tokens counted like the prompt's (json_output).
"""

from __future__ import annotations

import base64
import functools
import json
import os
from dataclasses import dataclass

from .instances import instance_for

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


# Why an output ended, independent of the wire format (each format names it its own way).
FINISH_STOP = "stop"  # the answer is complete
FINISH_LENGTH = "length"  # the max-tokens limit cut it
FINISH_STOP_SEQUENCE = "stop_sequence"  # a stop sequence was reached (not included)
FINISH_TOOL = "tool"  # a tool is called


@dataclass(frozen=True)
class Output:
    """One answer (an OpenAI choice, a Gemini candidate, an Anthropic message's content).

    `pieces` are the fragments a stream sends, in order; they join to the text. `tokens`
    counts the visible output tokens of this answer.
    """

    pieces: tuple[str, ...] = ()
    tokens: int = 0
    finish: str = FINISH_STOP
    stop_sequence: str | None = None
    tool_call: ToolCall | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class Generation:
    """One simulated answer, independent of the wire format it is sent in."""

    model: str
    prompt_tokens: int
    outputs: tuple[Output, ...]
    stream: bool = False
    # OpenAI only: stream_options.include_usage asked for a final usage chunk.
    include_usage: bool = False
    # Prompt tokens served from the provider's prompt cache (they are part of prompt_tokens).
    cached_tokens: int = 0
    # Anthropic only: prompt tokens written to the cache by this request (part of
    # prompt_tokens too; Anthropic reports input_tokens without either).
    cache_creation_tokens: int = 0
    # Anthropic only: the cache write is for one hour (`"ttl": "1h"`), not five minutes.
    cache_creation_1h: bool = False
    # Reasoning / thinking tokens, billed as output on top of the visible ones.
    reasoning_tokens: int = 0

    @property
    def output(self) -> Output:
        return self.outputs[0]

    @property
    def tool_call(self) -> ToolCall | None:
        return self.outputs[0].tool_call

    @property
    def visible_tokens(self) -> int:
        return sum(o.tokens for o in self.outputs)

    @property
    def completion_tokens(self) -> int:
        """Every billed output token: the visible ones of all outputs plus reasoning."""
        return self.visible_tokens + self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    # The first output's text, for formats that have a single answer.
    @property
    def words(self) -> tuple[str, ...]:
        return self.outputs[0].pieces

    @property
    def text(self) -> str:
        return self.outputs[0].text


def input_only(model: str, prompt_tokens: int) -> Generation:
    """What an embedding request "generated": input tokens only (for the stats)."""
    return Generation(model=model, prompt_tokens=prompt_tokens, outputs=(Output(),))


def text_output(count: int, stop_sequences=(), offset: int = 0) -> Output:
    """`count` words of lorem ipsum (from word `offset`), cut before the first stop sequence.

    A stop sequence may span words; the word it starts in is sent up to it (and counted as
    a token when something of it is left).
    """
    words = lorem_words(count, offset)
    stops = [s for s in stop_sequences if s]
    if not stops:
        return Output(pieces=words, tokens=count)
    pieces: list[str] = []
    sent = ""
    for word in words:
        candidate = sent + word
        hits = [(candidate.find(s), s) for s in stops if s in candidate]
        if hits:
            index, stop = min(hits)
            rest = candidate[len(sent) : index] if index > len(sent) else ""
            if rest:
                pieces.append(rest)
            return Output(
                pieces=tuple(pieces),
                tokens=len(pieces),
                finish=FINISH_STOP_SEQUENCE,
                stop_sequence=stop,
            )
        pieces.append(word)
        sent = candidate
    return Output(pieces=tuple(pieces), tokens=len(pieces))


def json_output(value, max_tokens: int | None) -> Output:
    """`value` as compact JSON text, in pieces of about one token (4 characters) each.

    Tokens follow the prompt rule (characters / 4); past `max_tokens` the text is cut there
    and the answer ends for length, as a real model's would (no longer valid JSON).
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    tokens = prompt_tokens_for(len(text))
    finish = FINISH_STOP
    if max_tokens is not None and tokens > max_tokens:
        text, tokens, finish = text[: max_tokens * 4], max_tokens, FINISH_LENGTH
    pieces = tuple(text[i : i + 4] for i in range(0, len(text), 4))
    return Output(pieces=pieces, tokens=tokens, finish=finish)


def json_answer_output(count: int, max_tokens: int | None, offset: int = 0) -> Output:
    """JSON mode without a schema: `{"answer": "<words>"}`, with as many of the `count` words
    as fit in `max_tokens` together with the JSON around them, as a model keeping to its
    budget would answer (cut for length only when not even `{"answer":""}` fits)."""
    words = count
    while True:
        value = {"answer": text_output(words, offset=offset).text}
        tokens = json_output(value, None).tokens
        if max_tokens is None or tokens <= max_tokens or words == 0:
            return json_output(value, max_tokens)
        words = max(0, words - (tokens - max_tokens))


def tool_output(call: ToolCall, tokens: int) -> Output:
    return Output(tokens=tokens, finish=FINISH_TOOL, tool_call=call)


@functools.lru_cache(maxsize=256)
def lorem_words(count: int, offset: int = 0) -> tuple[str, ...]:
    """`count` words from word `offset`, each after the first with its leading space, so
    they join to the text."""
    words = [_WORDS[(offset + i) % len(_WORDS)] for i in range(count)]
    return tuple(w if i == 0 else " " + w for i, w in enumerate(words))


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
    arguments = instance_for(by_name[name])
    return ToolCall(name=name, arguments=arguments if isinstance(arguments, dict) else {})
