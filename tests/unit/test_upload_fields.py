import uuid

import pytest

from api.uploads.fields import build_options, clean_tags, parse_field, safe_filename
from api.uploads.form import FieldCollector
from store.blob_store import content_disposition
from store.errors import InvalidInput


def test_fields_parse_to_typed_values():
    assert parse_field("auto_describe", "FALSE") == ("auto_describe", False)
    assert parse_field("tags", "a, b,,a") == ("tags", ["a", "b"])
    folder = uuid.uuid4()
    assert parse_field("folder_id", str(folder)) == ("folder_id", folder)
    assert parse_field("folder_id", "") == ("folder_id", None)
    assert parse_field("title", "   ") == ("title", None)
    assert parse_field("unknown_field", "x") is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("content_category", "x"), ("skip_duplicates", "perhaps"), ("project_id", "12"), ("title", "t" * 256)],
)
def test_bad_fields_name_the_field(name, value):
    with pytest.raises(InvalidInput) as caught:
        parse_field(name, value)
    assert caught.value.extra["errors"][0]["field"] == name


def test_compliance_standard_is_required_with_a_type():
    with pytest.raises(InvalidInput):
        build_options({"compliance_type": "mls"})
    assert build_options({"compliance_type": "mls", "compliance_standard": "nar"}).compliance_image_type == "main"


def test_tag_limits():
    assert clean_tags(["x"] * 100) == ["x"]
    with pytest.raises(InvalidInput):
        clean_tags([f"t{i}" for i in range(41)])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("../../etc/passwd", "passwd"), ("C:\\Users\\me\\photo.jpg", "photo.jpg"), ("a\x00b\n.txt", "ab.txt"),
     ("..", "upload"), (None, "upload"), ("x" * 300 + ".jpg", "x" * 255)],
)  # fmt: skip
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected


def test_content_disposition_is_rfc6266():
    header = content_disposition('Prüf "bericht".pdf')
    assert header == "attachment; filename=\"Pr_f _bericht_.pdf\"; filename*=UTF-8''Pr%C3%BCf%20%22bericht%22.pdf"


@pytest.mark.parametrize("text", ["a\x00b", "a\x1bb", "\x7f"])
def test_a_form_field_with_nul_or_control_characters_is_refused(text):
    collector = FieldCollector("title")
    collector.add(text.encode())
    with pytest.raises(InvalidInput) as caught:
        collector.text()
    assert caught.value.extra["errors"][0]["field"] == "title"


def test_a_form_field_keeps_tabs_and_line_breaks():
    collector = FieldCollector("compliance_standard")
    collector.add(b"line one\r\n\tline two")
    assert collector.text() == "line one\r\n\tline two"
