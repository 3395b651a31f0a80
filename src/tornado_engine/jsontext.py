"""Compact JSON text for what the engine writes many times per job (records, store parameters).

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder (and a closure) on every call: ~4 us on
top of encoding a job's record, which is written ~6 times per attempt. :func:`dumps` calls one C encoder,
made once, directly; where CPython's accelerator is missing it is ``JSONEncoder.encode``. Same output as
``json.dumps(obj, separators=(",", ":"))`` without the circular-reference check (our data has none).
PostgreSQL keeps records in json, not jsonb, columns: a \u0000 in a title stays as written.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "encoder"]


def encoder(
    *, default: Callable[[Any], Any] | None = None, ensure_ascii: bool = True,
    separators: tuple[str, str] = (",", ":"),
) -> Callable[[Any], str]:  # fmt: skip
    """``JSONEncoder(check_circular=False, ...).encode`` with its C encoder made once, here."""
    plain = json.JSONEncoder(check_circular=False, ensure_ascii=ensure_ascii, separators=separators,
                             default=default)  # fmt: skip
    make = getattr(json.encoder, "c_make_encoder", None)  # CPython's accelerator (not in typeshed)
    if make is None:
        return plain.encode
    strings = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    item, key = separators
    try:  # json.encoder's own call (markers, default, encoder, indent, separators, sort, skip, NaN)
        encode = make(None, plain.default, strings, None, key, item, False, False, True)
    except TypeError:  # another Python's signature: the public way
        return plain.encode

    def dumps(obj: Any) -> str:
        return "".join(encode(obj, 0))

    return dumps


dumps = encoder()
