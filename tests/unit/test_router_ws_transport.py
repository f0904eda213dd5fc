"""The router's hand-built text frames are byte for byte what the websockets library builds,
at every length encoding (7-bit, 16-bit, 64-bit)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from router.ws_transport import frame_text


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frame_text_matches_the_library(size: int) -> None:
    data = ("é" * size).encode()[:size]
    assert frame_text(data) == Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
