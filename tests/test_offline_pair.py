"""The offline pair's chunk assembly, checksum, cache reuse and atomic writes, on fake chunk packages.

Nothing here reads the real chunks or converts a real GGUF: each test builds its own small
"chunk packages" in a temp folder on sys.path, described by a GgufChunks with its own sha256.
"""

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from specdec_lite.models import offline_pair
from specdec_lite.models.offline_pair import GgufChunks, OfflineModelError, assemble_gguf, chunk_paths, offline_model_dir

PARTS = [b"GGUF fake part one|", b"part two, a little longer|", b"three"]


def install_fake_chunks(root: Path, monkeypatch, parts: list[bytes] = PARTS, sha256: str | None = None) -> GgufChunks:
    """Write one package per part (`<prefix>N/data/partNN.bin`) under `root` and put `root` on sys.path."""
    chunks = GgufChunks(name="fake-model", dist_prefix=f"specdec-fake-{uuid.uuid4().hex[:8]}-part", version="1.0",
                        n_parts=len(parts), sha256=sha256 or hashlib.sha256(b"".join(parts)).hexdigest())
    for part, data in enumerate(parts, start=1):
        package = root / chunks.module_name(part)
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('chunk packages must never be imported')\n")
        (package / "data" / f"part{part:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    return chunks


def fake_conversion(calls: list):
    """A stand-in for convert_gguf_to_folder: records the GGUF bytes and writes a config.json atomically."""
    def convert(gguf_file: Path, out_dir: Path) -> None:
        calls.append(gguf_file.read_bytes())
        offline_pair.write_folder_atomically(out_dir, lambda tmp: (tmp / "config.json").write_text("{}"))
    return convert


def test_good_parts_join_in_order_to_the_expected_bytes(tmp_path, monkeypatch):
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch)
    paths = chunk_paths(chunks)
    assert [p.name for p in paths] == ["part01.bin", "part02.bin", "part03.bin"]
    out = assemble_gguf(chunks, tmp_path / "out" / "model.gguf")
    assert out.read_bytes() == b"".join(PARTS)
    assert sorted(os.listdir(out.parent)) == ["model.gguf"]  # no temp file left behind


def test_missing_part_names_the_package_to_install(tmp_path, monkeypatch):
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch)
    (tmp_path / "site" / chunks.module_name(2) / "data" / "part02.bin").unlink()
    with pytest.raises(OfflineModelError, match=f"chunk 2/3.*'{chunks.dist_name(2)}==1.0'"):
        chunk_paths(chunks)


def test_uninstalled_package_names_the_package_to_install(tmp_path, monkeypatch):
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch, parts=PARTS[:2])
    three_parts = GgufChunks(chunks.name, chunks.dist_prefix, chunks.version, 3, chunks.sha256)
    with pytest.raises(OfflineModelError, match=f"missing chunk 3/3.*{three_parts.dist_name(3)}"):
        chunk_paths(three_parts)


def test_corrupted_part_is_refused_naming_the_packages_and_checksums(tmp_path, monkeypatch):
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch)
    (tmp_path / "site" / chunks.module_name(3) / "data" / "part03.bin").write_bytes(b"thr3e")
    corrupted = hashlib.sha256(b"".join(PARTS[:2]) + b"thr3e").hexdigest()
    with pytest.raises(OfflineModelError, match="checksum mismatch") as error:
        assemble_gguf(chunks, tmp_path / "out" / "model.gguf")
    message = str(error.value)
    assert chunks.dist_prefix in message and corrupted in message and chunks.sha256 in message
    assert os.listdir(tmp_path / "out") == []  # neither the GGUF nor its temp file


def test_cache_is_built_once_then_reused_without_chunks(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "cache"))
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch)
    calls = []
    monkeypatch.setattr(offline_pair, "convert_gguf_to_folder", fake_conversion(calls))
    assert not offline_pair.is_built(chunks)
    first = offline_model_dir(chunks)
    assert first == tmp_path / "cache" / "fake-model" and calls == [b"".join(PARTS)]
    assert offline_pair.is_built(chunks)
    for part in range(1, 4):  # the chunks are not needed any more
        (tmp_path / "site" / chunks.module_name(part) / "data" / f"part{part:02d}.bin").unlink()
    assert offline_model_dir(chunks) == first and len(calls) == 1
    assert sorted(os.listdir(tmp_path / "cache")) == ["fake-model"]  # the joined GGUF was a temp file


def test_missing_chunk_fails_fast_before_any_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "cache"))
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch)
    (tmp_path / "site" / chunks.module_name(1) / "data" / "part01.bin").unlink()
    calls = []
    monkeypatch.setattr(offline_pair, "convert_gguf_to_folder", fake_conversion(calls))
    with pytest.raises(OfflineModelError, match=chunks.dist_name(1)):
        offline_model_dir(chunks)
    assert calls == [] and not offline_pair.is_built(chunks)


def test_atomic_write_leaves_no_partial_folder_on_failure(tmp_path):
    out_dir = tmp_path / "model"

    def write_half_then_fail(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        offline_pair.write_folder_atomically(out_dir, write_half_then_fail)
    assert os.listdir(tmp_path) == []  # neither model/ nor its temp folder
    offline_pair.write_folder_atomically(out_dir, lambda folder: (folder / "config.json").write_text("{}"))
    assert os.listdir(tmp_path) == ["model"] and os.listdir(out_dir) == ["config.json"]


def test_atomic_file_write_leaves_no_partial_file_on_failure(tmp_path):
    path = tmp_path / "calibration.json"

    def write_half_then_fail(tmp: Path) -> None:
        tmp.write_text('{"half')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        offline_pair.write_file_atomically(path, write_half_then_fail)
    assert os.listdir(tmp_path) == []  # neither the file nor its temp file
    offline_pair.write_file_atomically(path, lambda tmp: tmp.write_text("{}"))
    assert os.listdir(tmp_path) == ["calibration.json"] and path.read_text() == "{}"


def test_failed_conversion_leaves_the_cache_unbuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "cache"))
    chunks = install_fake_chunks(tmp_path / "site", monkeypatch)

    def failing_conversion(gguf_file: Path, out_dir: Path) -> None:
        offline_pair.write_folder_atomically(out_dir, lambda tmp: 1 / 0)

    monkeypatch.setattr(offline_pair, "convert_gguf_to_folder", failing_conversion)
    with pytest.raises(ZeroDivisionError):
        offline_model_dir(chunks)
    assert os.listdir(tmp_path / "cache") == [] and not offline_pair.is_built(chunks)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_LITE_CACHE", str(tmp_path / "a"))
    assert offline_pair.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SPECDEC_LITE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert offline_pair.cache_dir() == tmp_path / "xdg" / "specdec_lite"


def test_real_pair_descriptions_match_the_pinned_models_extra():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    pinned = set(pyproject["project"]["optional-dependencies"]["models"])
    expected = {f"{chunks.dist_name(i)}=={chunks.version}" for chunks in (offline_pair.DRAFT_CHUNKS,
                offline_pair.TARGET_CHUNKS) for i in range(1, chunks.n_parts + 1)}
    assert pinned == expected and len(expected) == 6 + 22
