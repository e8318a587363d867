"""The general decoder of result records (msgspec), for what the compiled reader does not take.

Kept apart so that msgspec (9 ms of start-up) is imported only when a file needs it: plain box
and mask records go through ``io.fastjson``, Parquet through pyarrow.
"""
from __future__ import annotations

from typing import Annotated, Any

import msgspec

Int64 = Annotated[int, msgspec.Meta(ge=-2 ** 63, le=2 ** 63 - 1)]   # ids must fit the int64 columns


class Det(msgspec.Struct, gc=False):
    image_id: Int64
    category_id: Int64
    score: float
    bbox: tuple[float, float, float, float] | None = None
    segmentation: Any = None


ARRAY = msgspec.json.Decoder(list[Det])   # a JSON array of records
ONE = msgspec.json.Decoder(Det)           # one record (a JSON Lines line)
ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
ValidationError = msgspec.ValidationError


def convert(records: list) -> list:
    """Python dicts to records (msgspec's checks; raises ValidationError)."""
    return msgspec.convert(records, list[Det])
