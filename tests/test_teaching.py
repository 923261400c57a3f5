"""The notebooks' helpers (samwidgets.teaching): models by name, photos by URL with offline stand-ins, drawing.

Downloads go to a local HTTP server on 127.0.0.1; nothing here needs the internet.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from samwidgets import sam_model_registry
from samwidgets.io import download as download_module
from samwidgets.teaching import (
    PhotoError,
    describe_model,
    is_bundled,
    load_model,
    load_photo,
    model_name,
    reference_photo,
    show_anns,
    show_box,
    show_mask,
    show_points,
    unseen_photos,
)
from samwidgets.teaching import photos as photos_module

matplotlib.use("Agg")


def jpeg_bytes(width: int = 64, height: int = 48, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A random photo as JPEG bytes, and the pixels Pillow decodes from those bytes."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


class Files:
    """What the local server serves (path -> bytes), and how many requests each path got."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.requests: dict[str, int] = {}
        self.url = ""


@pytest.fixture
def served() -> Iterator[Files]:
    files = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # (http.server names its handlers so)
            files.requests[self.path] = files.requests.get(self.path, 0) + 1
            body = files.content.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    files.url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield files
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "RETRY_BACKOFF_S", 0.0)


# ---------------------------------------------------------------------------------------------- models


def test_default_cnn_is_the_bundled_model() -> None:
    sam = load_model("default_cnn")
    assert is_bundled(sam) and not sam.training
    assert "bundled" in describe_model(sam)
    assert "CNN encoder (widths 32-48-96-192-256" in describe_model(sam)  # not the unused ViT fields
    assert "ViT encoder of width 128 and depth 6" in describe_model(sam_model_registry["default_tiny"]())
    from samwidgets.sam2 import build_sam2

    sam2 = describe_model(build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu"))
    assert sam2.startswith("SAM 2: 1024 px input, Hiera encoder (width 96, stages 1-2-7-2)")
    mobile = describe_model(sam_model_registry["vit_t"]())
    assert mobile.startswith("MobileSAM: 1024 px input, TinyViT encoder (widths 64-128-160-320, 12 blocks)")
    assert is_bundled(load_model())  # the notebooks' fallback, and load_model's default


def test_the_old_name_default_still_loads_the_bundled_model_with_a_warning(capsys) -> None:
    """MODEL = "default" (the bundled model's name here before) keeps working, saying what it is called now."""
    with pytest.warns(FutureWarning, match='MODEL = "default" is now MODEL = "default_cnn"'):
        sam = load_model("default")
    assert is_bundled(sam)
    assert "model: default_cnn (MODEL = 'default')" in capsys.readouterr().out


def test_model_name_for_titles() -> None:
    from samwidgets.modeling import CONFIGS, SamConfig

    assert model_name(load_model("default_cnn")) == "the bundled model"
    assert model_name(sam_model_registry["vit_t"]()) == "MobileSAM"
    vit_b_like = sam_model_registry["default_tiny"]()
    vit_b_like.config = CONFIGS["vit_b"]  # told by the configuration alone: no 93 M parameters built here
    assert model_name(vit_b_like) == "SAM vit_b"
    vit_b_like.config = SamConfig(encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2,
                                  encoder_global_attn_indexes=(1,))
    assert model_name(vit_b_like) == "a SAM model"


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_model_name_must_be_a_name(bad: object) -> None:
    with pytest.raises(ValueError, match="MODEL must be one of"):
        load_model(bad)  # type: ignore[arg-type]


def test_unknown_model_name_names_the_known_ones() -> None:
    with pytest.raises(Exception, match="vit_b"):
        load_model("vit_x")


# ---------------------------------------------------------------------------------------------- photos


def test_unseen_photos_are_not_training_fills() -> None:
    from samwidgets.data.fills import PHOTO_SOURCES, TEXTURE_SOURCES

    photos = unseen_photos()
    assert not set(photos) & (set(PHOTO_SOURCES) | set(TEXTURE_SOURCES))
    for name, image in photos.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= 256, name


@pytest.mark.usefixtures("local_downloads")
def test_reference_photo_downloaded_with_the_official_prompts(served: Files, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data, pixels = jpeg_bytes(1800, 1200)
    served.content["/truck.jpg"] = data
    monkeypatch.setattr(photos_module, "REFERENCE_URL", served.url)
    photo = reference_photo("truck", cache_dir=tmp_path)
    assert photo.downloaded and photo.name == "truck"
    np.testing.assert_array_equal(photo.image, pixels)
    assert photo.point == (500, 375) and photo.box == (425, 600, 700, 875) and len(photo.boxes) == 4
    again = reference_photo("truck", cache_dir=tmp_path)  # from the cache: no second request
    np.testing.assert_array_equal(again.image, pixels)
    assert served.requests["/truck.jpg"] == 1


@pytest.mark.parametrize("name", ["truck", "groceries", "dog"])
def test_offline_stand_in_has_prompts_inside_the_photo(served: Files, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(photos_module, "REFERENCE_URL", served.url)  # serves nothing: 404
    photo = reference_photo(name, cache_dir=tmp_path)
    assert not photo.downloaded and f"offline stand-in for {name}.jpg" in photo.source
    assert "the download failed" in photo.source
    h, w = photo.image.shape[:2]
    if photo.point is not None:
        assert 0 <= photo.point[0] < w and 0 <= photo.point[1] < h
    for box in ([photo.box] if photo.box else []) + list(photo.boxes):
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, box
    assert reference_photo(name, offline=True).name == photo.name


def test_unknown_reference_photo() -> None:
    with pytest.raises(ValueError, match="'truck', 'groceries', 'dog'"):
        reference_photo("cat")


@pytest.mark.usefixtures("local_downloads")
def test_a_download_that_is_not_an_image_is_deleted_and_named(served: Files, tmp_path: Path) -> None:
    served.content["/broken.jpg"] = b"<html>not a photo</html>"
    with pytest.raises(PhotoError, match="broken.jpg is not a readable image"):
        load_photo(served.url + "broken.jpg", cache_dir=tmp_path)
    assert served.requests["/broken.jpg"] == 2  # the cached copy is never trusted: downloaded once more
    assert not list((tmp_path / "photos").glob("*broken.jpg"))


@pytest.mark.usefixtures("local_downloads")
def test_a_cached_photo_cut_short_is_downloaded_again(served: Files, tmp_path: Path) -> None:
    data, pixels = jpeg_bytes()
    served.content["/mine.jpg"] = data
    url = served.url + "mine.jpg"
    np.testing.assert_array_equal(load_photo(url, cache_dir=tmp_path), pixels)
    (cached,) = (tmp_path / "photos").glob("*mine.jpg")
    cached.write_bytes(data[: len(data) // 2])  # damaged on disk since
    np.testing.assert_array_equal(load_photo(url, cache_dir=tmp_path), pixels)
    assert served.requests["/mine.jpg"] == 2


def test_own_photo_from_a_file(tmp_path: Path) -> None:
    data, pixels = jpeg_bytes()
    path = tmp_path / "holiday.jpg"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_photo(path), pixels)
    np.testing.assert_array_equal(load_photo(str(path)), pixels)


def test_own_photo_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="no photo at .*give the path of an image file"):
        load_photo(tmp_path / "missing.jpg")
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny)
    with pytest.raises(PhotoError, match="8 x 8 px"):
        load_photo(tiny)


# ---------------------------------------------------------------------------------------------- drawing


def test_drawing_helpers_draw_what_they_are_given() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:15] = True
    show_mask(mask, ax)
    (picture,) = ax.get_images()
    rgba = picture.get_array()
    assert rgba.shape == (20, 30, 4)
    assert np.all(rgba[mask][:, 3] > 0) and np.all(rgba[~mask][:, 3] == 0)
    show_points(np.array([[1, 2], [3, 4]]), np.array([1, 0]), ax)
    assert [c.get_offsets().tolist() for c in ax.collections] == [[[1.0, 2.0]], [[3.0, 4.0]]]
    show_box([2, 3, 12, 9], ax)
    (rect,) = ax.patches
    assert (rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()) == (2, 3, 10, 6)
    small = np.zeros_like(mask)
    small[0, 0] = True
    show_anns([{"segmentation": small, "area": 1}, {"segmentation": mask, "area": 50}], ax)
    overlay = ax.get_images()[-1].get_array()
    assert overlay[0, 0, 3] > 0 and overlay[7, 7, 3] > 0 and overlay[15, 25, 3] == 0
    with pytest.raises(ValueError, match="got 2 points but 1 labels"):
        show_points(np.zeros((2, 2)), np.ones(1), ax)
    plt.close(fig)
