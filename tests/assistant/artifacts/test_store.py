"""The artifact store on a real file system through fsspec: complete or absent, never half."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from assistant.artifacts.store import CHECKSUMS, ArtifactError, ArtifactStore


def make_folder(root: Path) -> Path:
    folder = root / "v000001"
    (folder / "bm25").mkdir(parents=True)
    (folder / "manifest.json").write_text('{"version": "v000001"}')
    (folder / "bm25" / "vocab.bin").write_bytes(bytes(range(256)) * 4000)
    return folder


def test_a_published_folder_comes_back_identical(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    folder = make_folder(tmp_path)
    artifact = store.publish(folder, "index/v000001")

    fetched = store.fetch("index/v000001", tmp_path / "host" / "v000001")

    assert set(artifact.files) == {"manifest.json", "bm25/vocab.bin"}
    for name in artifact.files:
        assert (fetched / name).read_bytes() == (folder / name).read_bytes()
    assert not list(fetched.parent.glob(".*")), "no staging folder left behind"


def test_a_file_url_and_a_lone_file(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    model = tmp_path / "model.Q8_0.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 10_000)
    store.publish(model, "models/ft-job3")
    fetched = store.fetch("models/ft-job3", tmp_path / "cache" / "ft-job3")
    assert (fetched / "model.Q8_0.gguf").read_bytes() == model.read_bytes()


def test_an_artifact_without_its_checksums_is_not_there(tmp_path: Path) -> None:
    """An upload cut short (the checksums are written last) is never taken by a host."""
    store = ArtifactStore(str(tmp_path / "store"))
    store.publish(make_folder(tmp_path), "index/v000001")
    (tmp_path / "store" / "index" / "v000001" / CHECKSUMS).unlink()

    assert store.describe("index/v000001") is None
    assert store.keys("index") == []
    with pytest.raises(ArtifactError, match="no complete artifact"):
        store.fetch("index/v000001", tmp_path / "host" / "v000001")
    assert not (tmp_path / "host" / "v000001").exists()


def test_corrupted_bytes_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    store.publish(make_folder(tmp_path), "index/v000001")
    stored = tmp_path / "store" / "index" / "v000001" / "bm25" / "vocab.bin"
    data = bytearray(stored.read_bytes())
    data[500] ^= 0xFF  # same size, one byte flipped
    stored.write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match="checksum"):
        store.fetch("index/v000001", tmp_path / "host" / "v000001")
    assert not (tmp_path / "host").exists() or not any((tmp_path / "host").iterdir())


def test_republishing_is_idempotent_but_never_rewrites_other_contents(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    folder = make_folder(tmp_path)
    first = store.publish(folder, "index/v000001")
    assert store.publish(folder, "index/v000001") == first
    (folder / "manifest.json").write_text('{"version": "other"}')
    with pytest.raises(ArtifactError, match="other contents"):
        store.publish(folder, "index/v000001")
    recorded = json.loads((tmp_path / "store" / "index" / "v000001" / CHECKSUMS).read_text())
    assert recorded["manifest.json"]["sha256"] == first.files["manifest.json"].sha256


def test_concurrent_fetches_of_one_key_give_one_complete_folder(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    folder = make_folder(tmp_path)
    store.publish(folder, "index/v000001")
    target = tmp_path / "host" / "v000001"
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            store.fetch("index/v000001", target)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in (tmp_path / "host").iterdir()) == ["v000001"]
    assert (target / "bm25" / "vocab.bin").read_bytes() == (
        folder / "bm25" / "vocab.bin"
    ).read_bytes()


def test_keys_and_removal(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    for name in ("v000001", "v000002"):
        store.publish(make_folder(tmp_path / name), f"index/{name}")
    assert store.keys("index") == ["index/v000001", "index/v000002"]
    store.remove("index/v000001")
    assert store.keys("index") == ["index/v000002"]
    assert not (tmp_path / "store" / "index" / "v000001").exists()


@pytest.mark.parametrize("key", ["", "/etc", "index/../../x"])
def test_keys_cannot_leave_the_store(tmp_path: Path, key: str) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    with pytest.raises(ArtifactError, match="not an artifact key"):
        store.describe(key)


@pytest.mark.parametrize("url", ["nosuchprotocol://x/y", "s3x://bucket"])
def test_an_unusable_store_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(ArtifactError, match="cannot open the artifact store"):
        ArtifactStore(url)
