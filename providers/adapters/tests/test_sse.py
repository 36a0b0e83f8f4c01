import pytest

from providers.adapters.sse import SSEDecoder, iter_sse


def events(*chunks: bytes):
    return [(e.event, e.data) for e in iter_sse(chunks)]


def test_data_events_with_lf():
    assert events(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [
        ("message", '{"a":1}'),
        ("message", "[DONE]"),
    ]


def test_named_events_and_comments():
    stream = b': keep-alive\nevent: ping\ndata: {}\n\nevent: message_stop\ndata: {"x":1}\n\n'
    assert events(stream) == [("ping", "{}"), ("message_stop", '{"x":1}')]


def test_multi_line_data_is_joined_with_newlines():
    assert events(b"data: first\ndata:second\ndata:  third\n\n") == [
        ("message", "first\nsecond\n third")
    ]


@pytest.mark.parametrize("split", range(1, 24))
def test_crlf_split_anywhere_between_reads(split):
    # Gemini frames events with CRLF; a read boundary between CR and LF must not end the
    # event early (requests' iter_lines would).
    raw = b"data: one\r\ndata: two\r\n\r\ndata: 3\r\n\r\n"
    assert events(raw[:split], raw[split:]) == [("message", "one\ntwo"), ("message", "3")]


def test_byte_by_byte_delivery():
    raw = 'event: x\ndata: {"t":"héllo"}\n\n'.encode()
    assert events(*(raw[i : i + 1] for i in range(len(raw)))) == [("x", '{"t":"héllo"}')]


def test_cr_only_line_ends():
    assert events(b"data: a\rdata: b\r\r") == [("message", "a\nb")]


def test_leading_bom_is_ignored():
    assert events("\ufeffdata: x\n\n".encode()) == [("message", "x")]


def test_blank_lines_without_data_dispatch_nothing():
    assert events(b"\n\n: comment\n\nevent: lonely\n\ndata: x\n\n") == [("message", "x")]


def test_final_event_without_blank_line_is_kept_when_its_lines_are_complete():
    assert events(b"data: [DONE]\n") == [("message", "[DONE]")]


def test_event_cut_mid_line_is_discarded():
    assert events(b'data: {"a":1}\n\ndata: {"b":') == [("message", '{"a":1}')]


def test_id_and_retry_fields():
    decoder = SSEDecoder()
    (event,) = decoder.feed(b"id: 7\nretry: 1500\ndata: x\n\n")
    assert (event.id, event.retry) == ("7", 1500)
