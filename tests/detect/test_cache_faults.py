"""The detection cache (`--cache`) and the soft-biometrics store on a file that is not SQLite or an
unwritable place: one project error naming the path."""
from __future__ import annotations

import pytest

from xaiface.errors import XaifaceError


@pytest.mark.parametrize("store", ["detections", "soft"])
@pytest.mark.parametrize("where", ["text", "proc", "under-a-file"])
def test_cache_on_a_non_sqlite_file_or_unwritable_place(tmp_path, store, where):
    from xaiface.detect.cache import DetectionCache
    from xaiface.soft.store import ResultStore

    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    path = {"text": text, "proc": "/proc/xaiface-nope/c.sqlite",
            "under-a-file": text / "c.sqlite"}[where]
    with pytest.raises(XaifaceError) as e:
        (DetectionCache if store == "detections" else ResultStore)(path)
    assert str(text if where != "proc" else "/proc/xaiface-nope") in str(e.value)
    assert text.read_text() == "hello\n"
