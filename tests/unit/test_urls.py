"""Every value the plugin puts in an Azure ML URL arrives as it was sent (issue #14/#15: `+`, `&`, `#`, `%`)."""

from urllib.parse import parse_qs, unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from mlflow_azureml_registry.azure.urls import segment, with_query

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


@given(values=st.dictionaries(st.sampled_from(["tags", "properties", "$skip", "a b", "k&y"]), TEXT, min_size=1))
def test_query_values_arrive_as_sent(values):
    url = with_query("https://management.example/models?api-version=2025-12-01", values)
    parts = urlsplit(url)
    assert parts.fragment == ""  # a '#' in a value never starts a fragment
    decoded = parse_qs(parts.query, keep_blank_values=True)  # what a server reads (form decoding: '+' is ' ')
    assert decoded.pop("api-version") == ["2025-12-01"]
    assert decoded == {k: [v] for k, v in values.items()}


def test_the_issue_values():
    for value in ("plus=a+b", "x%41", "a+1", "x&y", "a#b"):
        query = urlsplit(with_query("https://h/p", {"tags": value})).query
        assert parse_qs(query) == {"tags": [value]}, value


@given(value=TEXT)
def test_path_segments_stay_one_segment(value):
    encoded = segment(value)
    assert "/" not in encoded and "?" not in encoded and "#" not in encoded
    assert unquote(encoded) == value


def test_none_values_are_left_out():
    assert with_query("https://h/p", {"a": None}) == "https://h/p"
    assert with_query("https://h/p?x=1", {"a": "1", "b": None}) == "https://h/p?x=1&a=1"
