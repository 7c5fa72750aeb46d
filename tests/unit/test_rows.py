import uuid

import msgspec
import pytest

from api.shaping import shaped
from store.rows import ChunkRow, FileRow, JobRow, PageRow, as_row, as_rows, column_names
from store.tables import Chunk, File, Job


@pytest.mark.parametrize(("row", "table"), [(FileRow, File), (JobRow, Job), (ChunkRow, Chunk)])
def test_a_full_row_has_every_column_of_its_table(row, table):
    assert set(column_names(row)) == {column._meta.name for column in table._meta.columns}


def test_records_convert_once_and_are_checked():
    page = {"page_number": 1, "status": "completed", "elements": [{"type": "heading"}], "error_message": None}
    assert as_rows(PageRow, [page, page]) == [PageRow(1, "completed", [{"type": "heading"}], None)] * 2
    with pytest.raises(msgspec.ValidationError, match="page_number"):
        as_row(PageRow, page | {"page_number": "one"})


class _Wire(msgspec.Struct):
    id: uuid.UUID
    status: str
    label: str


def test_a_shape_takes_the_rows_fields_and_the_computed_ones_win():
    page = PageRow(2, "failed", [], "no text")
    wire = shaped(_Wire, page, id=uuid.UUID(int=2), label="page 2")
    assert wire == _Wire(uuid.UUID(int=2), "failed", "page 2")
    assert shaped(_Wire, page, id=uuid.UUID(int=2), status="pending", label="x").status == "pending"
