"""Two hosts with their own data folders, one database and one artifact store: what one
builds or registers, the other serves, verified, without a restart."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.artifacts.sharing import INDEX_POINTER, ArtifactFollower, read_pointer
from assistant.artifacts.store import ArtifactError
from assistant.corpus.ingest import ingest_documents
from assistant.llm import registry
from assistant.services import Services
from assistant.storage.models import ModelKind
from tests.conftest import fixture_documents, make_settings, services_with_shared_models
from tests.paths import CHAT_MODEL


@pytest.fixture()
def hosts(tmp_path: Path, shared_models: Services) -> Iterator[tuple[Services, Services]]:
    shared = {
        "database": {"url": f"sqlite:///{tmp_path / 'shared.db'}"},
        "artifacts": {"url": str(tmp_path / "store"), "poll_s": 0.2},
    }
    worker = services_with_shared_models(
        make_settings(tmp_path / "worker", **shared), shared_models
    )
    web = services_with_shared_models(make_settings(tmp_path / "web", **shared), shared_models)
    worker.db.upgrade()
    yield worker, web
    worker.close()
    web.close()


def test_an_index_built_on_one_host_is_served_by_the_other(
    hosts: tuple[Services, Services],
) -> None:
    worker, web = hosts
    documents = fixture_documents()
    ingest_documents(worker, documents[:5])
    pointer = read_pointer(worker.db, INDEX_POINTER)
    assert pointer is not None and pointer.version == worker.index.current_name()
    assert not web.index.exists()

    follower = ArtifactFollower(web.artifacts, web.index, interval_s=0.2)
    follower.sync_once()
    assert web.index.current_name() == pointer.version
    title = documents[0].title
    assert web.index.search(title, k=3)[0].chunk.doc_id == documents[0].doc_id

    # A later ingest reaches the other host through the follower's thread, no restart.
    follower.start()
    try:
        ingest_documents(worker, documents[5:8])
        deadline = time.monotonic() + 10
        while web.index.current_name() != worker.index.current_name():
            assert time.monotonic() < deadline, "the web host never took the new version"
            time.sleep(0.1)
    finally:
        follower.stop()
    hit = web.index.search(documents[6].title, k=3)[0]
    assert hit.chunk.doc_id == documents[6].doc_id


def test_a_second_writer_builds_on_the_shared_version(hosts: tuple[Services, Services]) -> None:
    """Two hosts that ingest in turn: the second starts from the first's version."""
    worker, web = hosts
    documents = fixture_documents()
    ingest_documents(worker, documents[:3])
    ingest_documents(web, documents[3:5])  # brought up to date first, under the shared lease

    indexed = {c.doc_id for c in web.index.current().chunks}
    assert {d.doc_id for d in documents[:5]} <= indexed
    assert read_pointer(web.db, INDEX_POINTER).version == web.index.current_name()  # type: ignore[union-attr]
    assert web.index.current_name() > worker.index.current_name()  # type: ignore[operator]


def register_merged(host: Services, folder: Path) -> registry.ModelVersionInfo:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "ft-job1.Q8_0.gguf"
    shutil.copyfile(CHAT_MODEL, model)
    version = registry.register_version(host.db, "ft-job1", kind=ModelKind.MERGED, base_path=model)
    return host.artifacts.publish_model(version)


def test_a_model_registered_on_one_host_is_fetched_verified_by_the_other(
    hosts: tuple[Services, Services], tmp_path: Path
) -> None:
    worker, web = hosts
    version = register_merged(worker, tmp_path / "worker" / "trained")
    assert version.artifact_key == "models/ft-job1"

    # The host that trained it loads its own file, nothing copied.
    assert worker.artifacts.model_file(version) == version.serving_path
    original = version.serving_path.read_bytes()
    version.serving_path.unlink()  # the web host is another machine: the file is not there

    # Promoted from the web host: the store has the file.
    registry.activate_version(web.db, version.id)
    web.artifacts.sync_active_model()
    on_web = web.artifacts.model_file(registry.get_version(web.db, version.id))

    assert tmp_path / "web" in on_web.parents
    assert on_web.read_bytes() == original


def test_a_corrupted_model_is_never_served(
    hosts: tuple[Services, Services], tmp_path: Path
) -> None:
    worker, web = hosts
    version = register_merged(worker, tmp_path / "worker" / "trained")
    stored = tmp_path / "store" / "models" / "ft-job1" / "ft-job1.Q8_0.gguf"
    with stored.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff\xff\xff\xff")

    version.serving_path.unlink()  # another machine
    with pytest.raises(ArtifactError, match="checksum"):
        web.artifacts.model_file(version)
    cache = web.settings.artifact_cache_dir
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_one_machine_publishes_nothing(fresh_services: Services) -> None:
    """The embedded default: no store, no pointer, files used where they are."""
    ingest_documents(fresh_services, fixture_documents()[:2])
    assert read_pointer(fresh_services.db, INDEX_POINTER) is None
    assert not (fresh_services.settings.data_dir / "artifacts").exists()


def test_a_file_uploaded_on_the_web_host_is_ingested_by_the_worker(
    hosts: tuple[Services, Services],
) -> None:
    import io

    from assistant.accounts.users import create_user
    from assistant.corpus.uploads import save_uploads, start_ingest
    from assistant.storage.models import Role
    from assistant.tasks import run_ingest_job

    worker, web = hosts
    admin_id = create_user(web.db, "admin@example.org", "a long password 123", Role.ADMIN)
    text = b"Zebrafish fin regeneration clinic notes.\n\nThe fins regrow in two weeks."
    saved = save_uploads(web, "medical", [("zebrafish-notes.txt", io.BytesIO(text))])
    sent: list[tuple[object, ...]] = []
    job_id = start_ingest(
        web, lambda *args, **_: sent.append(args), "medical", saved, admin_id, "upload"
    )

    assert sent, "the job was handed to the broker"
    shutil.rmtree(web.settings.data_dir / "uploads")  # the worker cannot read the web host's disk
    result = run_ingest_job(worker, job_id)

    assert result["documents_added"] == 1
    web.artifacts.sync_index(web.index)
    hit = web.index.search("zebrafish fin regeneration", k=1)[0]
    assert hit.chunk.doc_id == "medical:zebrafish-notes"


def test_a_pruned_candidate_leaves_the_store_and_the_active_one_stays(
    tmp_path: Path, shared_models: Services
) -> None:
    from assistant.learning.folders import models_dir
    from assistant.learning.runs import prune_candidates

    settings = make_settings(
        tmp_path / "worker",
        artifacts={"url": str(tmp_path / "store")},
        learning={"keep_candidates": 0},
    )
    worker = services_with_shared_models(settings, shared_models)
    worker.db.upgrade()
    try:
        rejected = register_merged(worker, models_dir(worker))
        registry.reject_version(worker.db, rejected.id)

        assert prune_candidates(worker) == ["ft-job1"]
        assert worker.artifacts.store.describe("models/ft-job1") is None
        assert not (tmp_path / "store" / "models" / "ft-job1").exists()
    finally:
        worker.close()


def test_a_dataset_written_on_one_worker_trains_on_another(
    hosts: tuple[Services, Services],
) -> None:
    from assistant.learning.datasets import latest_dataset, local_dataset, record_dataset
    from assistant.learning.folders import datasets_dir
    from training.datasets import read_examples, write_dataset
    from training.examples import Example

    builder, trainer = hosts
    train = [Example("What is asthma?", "[1] Asthma is a lung disease.", "A lung disease [1].")]
    files = write_dataset(datasets_dir(builder), 1, train, [], [], {"sources": []}, "system")
    builder.artifacts.publish_dataset(files.path, files.version, files.content_hash)
    record_dataset(builder.db, files, {"sources": []})
    shutil.rmtree(files.path)  # the trainer is another machine

    info = local_dataset(trainer, latest_dataset(trainer.db))  # type: ignore[arg-type]

    assert trainer.settings.data_dir in info.path.parents
    assert read_examples(info.path, "train") == train
