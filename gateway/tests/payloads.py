"""Request pieces the Anthropic-format tests share."""

# A tool in Anthropic's Messages shape (`input_schema`), as the anthropic SDK sends it.
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
