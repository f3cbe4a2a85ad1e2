"""The picture store: every item's picture decoded once per dataset and size, then memory-mapped; bad pictures
are grey and counted, on every run."""
import io
import logging

import PIL.Image
import pytest

from mmsr_kit import items as items_module
from mmsr_kit.data.tables import RecDataset, item_table, interaction_table


def png_bytes(colour, size=12):
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def dataset(images):
    ids = [f"i{k}" for k in range(len(images))]
    table = item_table(ids, [f"item {k}" for k in range(len(images))], images)
    return RecDataset("pics", table, interaction_table(["u"] * len(ids), ids, list(range(len(ids)))))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSR_CACHE", str(tmp_path))
    return tmp_path


def test_pictures_are_decoded_once_then_read_from_the_store(cache, monkeypatch):
    data = dataset([{"bytes": png_bytes((255, 0, 0)), "path": None}, {"bytes": png_bytes((0, 0, 255)), "path": None}])
    first = items_module.item_pictures(data, 8)
    assert first.shape == (3, 3, 8, 8) and (first[0] == 0).all()  # row 0: padding
    assert (first[1, 0] == 255).all() and (first[1, 2] == 0).all() and (first[2, 2] == 255).all()

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(items_module, "_decode", no_decoding)
    again = items_module.item_pictures(data, 8)
    assert len(list((cache / "pictures").glob("pics-8px-*.npy"))) == 1
    assert (again == first).all()
    with pytest.raises(AssertionError, match="decoded again"):
        items_module.item_pictures(data, 16)  # another size is another store


def test_missing_and_unreadable_pictures_are_grey_and_counted_on_every_run(cache, caplog):
    data = dataset([{"bytes": png_bytes((0, 255, 0)), "path": None}, None, {"bytes": b"not a picture", "path": None}])
    for _ in range(2):  # decoding, then from the store
        data.notes.clear()
        with caplog.at_level(logging.WARNING):
            pictures = items_module.item_pictures(data, 8)
        assert (pictures[2] == 128).all() and (pictures[3] == 128).all() and (pictures[1, 1] == 255).all()
        assert data.notes == {"missing_images": 1, "unreadable_images": 1}
        assert "1 item(s) with an unreadable picture" in caplog.text


def test_a_changed_picture_file_is_decoded_again(cache, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes((255, 255, 255)))
    before = items_module.item_pictures(dataset([str(path)]), 8)
    path.write_bytes(png_bytes((0, 0, 0), size=10))  # same path, new content
    after = items_module.item_pictures(dataset([str(path)]), 8)
    assert (before[1] == 255).all() and (after[1] == 0).all()
