"""Property-based fuzzing of the request decoder: nothing a client sends may cause a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recognizer.decode import decode_image
from recognizer.errors import ApiError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "image": json_values | st.text(max_size=200) | st.just("data:image/png;base64,iVBORw0KGgo="),
        "strokes": json_values | st.lists(st.lists(st.lists(st.floats() | st.integers(), max_size=3), max_size=6)),
        "width": json_values,
        "height": json_values,
        "model": json_values | st.sampled_from(["digits", "characters"]),
        "mode": json_values | st.sampled_from(["single", "text"]),
    },
)
content_types = st.sampled_from(
    ["application/json", "image/png", "image/jpeg", "application/octet-stream", "multipart/form-data", "text/plain", ""]
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(payload=fields)
def test_json_requests_never_fail_on_the_server(client, payload):
    response = client.post("/predict", data=json.dumps(payload), content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    assert ("error" in response.json) == (response.status_code >= 400)


@FUZZ
@given(body=st.binary(max_size=2000), content_type=content_types, query=st.text(max_size=20))
def test_raw_bodies_never_fail_on_the_server(client, body, content_type, query):
    response = client.post("/predict", data=body, headers={"Content-Type": content_type}, query_string={"model": query})
    assert response.status_code < 500, response.get_data(as_text=True)


PNG_PREFIX = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@settings(max_examples=500, deadline=None)
@given(tail=st.binary(max_size=300))
def test_decoder_answers_corrupt_images_with_api_errors(tail):
    for prefix in (PNG_PREFIX, b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 "):
        try:
            gray, scale = decode_image(prefix + tail)
        except ApiError as error:
            assert 400 <= error.status < 500
        else:
            assert gray.ndim == 2 and scale > 0
