"""A generated corpus of malformed and unusual media inputs, and a runner that feeds each to the processor.

Run as a script (``python -m tests.processor.input_corpus OUT_DIR``) it writes the corpus, processes every
case (videos through both back ends, images through the image path) and prints one line per case:
``ok <case>``, ``pkg <case> <ExceptionClass>`` (the package's own exception) or ``OTHER <case> ...``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SMALL = {"min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28}


def _raw_h264(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> None:
    """An Annex-B H.264 elementary stream (no container, no timestamps, cannot seek)."""
    with av.open(str(path), mode="w", format="h264") as out:
        stream = out.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast"}
        rng = np.random.default_rng(0)
        for i in range(frames):
            img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _mutations(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    flipped = bytearray(data)
    for pos in rng.integers(0, len(flipped), size=24):
        flipped[pos] ^= int(rng.integers(1, 256))
    return {
        "trunc10": data[: len(data) // 10],
        "trunc60": data[: int(len(data) * 0.6)],
        "flip": bytes(flipped),
    }


def write_corpus(root: Path) -> tuple[dict[str, Path | str], dict[str, object]]:
    """``(videos, images)``: name -> input. Deterministic."""
    from transformers_llava_ov2.video.synthetic import write_synthetic_clip

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    videos: dict[str, Path | str] = {}
    for codec, ext in (("h264", "mp4"), ("hevc", "mkv"), ("mpeg4", "avi"), ("mjpeg", "avi"), ("vp9", "webm")):
        clip = write_synthetic_clip(
            root / f"{codec}.{ext}", seconds=0.6, fps=10, size=(64, 48), codec=codec, object_size=8
        )
        videos[f"{codec}.{ext}"] = clip.path
        for name, data in _mutations(clip.path.read_bytes(), rng).items():
            path = root / f"{codec}_{name}.{ext}"
            path.write_bytes(data)
            videos[path.name] = path
    odd = write_synthetic_clip(root / "odd.mp4", seconds=0.3, fps=10, size=(18, 16), object_size=4)
    videos["odd_size.mp4"] = odd.path
    _raw_h264(root / "raw.h264")
    videos["raw.h264"] = root / "raw.h264"
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(root / "still.png")
    videos["image_as_video.png"] = root / "still.png"
    (root / "empty.mp4").write_bytes(b"")
    videos["empty.mp4"] = root / "empty.mp4"
    (root / "text.mp4").write_text("not a video\n" * 50)
    videos["text.mp4"] = root / "text.mp4"
    videos["missing.mp4"] = str(root / "missing.mp4")
    videos["folder"] = str(root)
    videos["empty_path"] = ""
    videos["http_url"] = "http://example.com/clip.mp4"
    videos["file_url"] = (root / "h264.mp4").as_uri()

    images: dict[str, object] = {}
    base = rng.integers(0, 255, (30, 44, 3), dtype=np.uint8)
    for mode in ("1", "L", "P", "RGB", "RGBA", "CMYK", "I", "F", "LA", "I;16", "YCbCr"):
        images[f"mode_{mode}"] = Image.fromarray(base).convert(mode)
    Image.fromarray(base).save(root / "good.jpg", quality=90)
    images["jpeg_path"] = str(root / "good.jpg")
    data = (root / "good.jpg").read_bytes()
    (root / "trunc.jpg").write_bytes(data[: len(data) // 2])
    images["truncated_jpeg"] = str(root / "trunc.jpg")
    (root / "text.png").write_text("hello\n")
    images["text_as_png"] = str(root / "text.png")
    images["wide_10000x10"] = Image.new("RGB", (10000, 10))
    images["tiny_2x2"] = Image.new("RGB", (2, 2))
    images["empty_path"] = ""
    images["missing"] = str(root / "missing.png")
    images["folder"] = str(root)
    images["file_url"] = (root / "good.jpg").as_uri()
    images["array_uint8"] = base
    images["array_1d"] = np.zeros(7, dtype=np.uint8)
    return videos, images


def run(root: Path) -> list[str]:
    import warnings

    from transformers_llava_ov2.errors import LlavaOnevision2Error
    from transformers_llava_ov2.image_processing_llava_onevision2 import LlavaOnevision2ImageProcessor
    from transformers_llava_ov2.video_processing_llava_onevision2 import LlavaOnevision2VideoProcessor

    warnings.simplefilter("ignore")
    videos, images = write_corpus(root)
    vp, ip = LlavaOnevision2VideoProcessor(), LlavaOnevision2ImageProcessor()
    lines = []
    jobs = [
        (f"{name}[{backend}]", lambda v=v, b=backend: vp.process_video(v, video_backend=b, **SMALL))
        for name, v in videos.items()
        for backend in ("frames", "codec")
    ]
    jobs += [
        (f"image:{name}", lambda i=i: ip(ip.fetch_images(i), return_tensors="np", **SMALL))
        for name, i in images.items()
    ]
    for case, job in jobs:
        try:
            job()
            lines.append(f"ok {case}")
        except LlavaOnevision2Error as exc:
            lines.append(f"pkg {case} {type(exc).__name__}: {exc}")
        except Exception as exc:  # what the test forbids: a foreign exception escaping
            lines.append(f"OTHER {case} {type(exc).__name__}: {exc}")
    return lines


if __name__ == "__main__":
    for line in run(Path(sys.argv[1])):
        print(line, flush=True)
