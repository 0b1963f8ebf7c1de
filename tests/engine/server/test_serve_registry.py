"""The jobs table and the checkpoint registry on their own (no server process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from easytune_engine.server.checkpoints import Checkpoint, CheckpointBook, file_sha256
from easytune_engine.server.jobs import JobParams, JobTable
from easytune_engine.server.store import Store
from easytune_protocol import ErrorCode, ProtocolError


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "engine.sqlite")
    yield s
    s.close()


def queue(table: JobTable, job_id: str) -> None:
    with table.store.transaction():
        table.insert(job_id, JobParams(kind="finetune", budget=5, backbone="mld"))


def test_job_states_change_only_along_the_lifecycle(store: Store) -> None:
    table = JobTable(store)
    queue(table, "job-a")
    queue(table, "job-b")
    assert table.claim_next().job_id == "job-a"  # oldest first, now running
    assert table.request_cancel("job-b").state == "cancelled"  # queued: cancelled at once
    assert table.claim_next() is None  # a cancelled job is never claimed
    assert table.request_cancel("job-a").state == "cancelling"
    table.progress("job-a", 2, {"reward": 0.5})
    table.finish("job-a", "cancelled", "stopped after 2", metrics={"updates": 20.0})
    done = table.require("job-a")
    assert (done.state, done.step, done.metrics) == (
        "cancelled",
        2,
        {"reward": 0.5, "updates": 20.0},
    )
    assert table.request_cancel("job-a").state == "cancelled"  # final: unchanged
    with pytest.raises(ValueError, match="final job state"):
        table.finish("job-a", "running")
    with pytest.raises(ProtocolError) as err:
        table.request_cancel("job-zzz")
    assert err.value.code == ErrorCode.NOT_FOUND


def test_a_restart_interrupts_what_was_running_and_keeps_the_queue(store: Store) -> None:
    table = JobTable(store)
    for job_id in ("job-1", "job-2", "job-3"):
        queue(table, job_id)
    table.claim_next()
    table.request_cancel(table.claim_next().job_id)  # job-2: cancelling when the engine died
    assert sorted(table.interrupt_unfinished()) == ["job-1", "job-2"]
    assert [j.state for j in table.recent(10)] == ["queued", "interrupted", "interrupted"]
    assert table.claim_next().job_id == "job-3"


def register(book: CheckpointBook, name: str, data_dir: Path, payload: bytes) -> Checkpoint:
    path = data_dir / "jobs" / name / "model.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    ckpt = Checkpoint(name, "mld", "full", None, None, str(path.relative_to(data_dir)),
                      file_sha256(path), 1.0, {"reward_last": 0.3})  # fmt: skip
    with book.store.transaction():
        book.insert(ckpt)
    return ckpt


def test_activation_history_and_rollback(store: Store, tmp_path: Path) -> None:
    book = CheckpointBook(store, tmp_path)
    for name in ("a", "b"):
        register(book, name, tmp_path, name.encode() * 100)
    with pytest.raises(ProtocolError) as err:
        with store.transaction():
            book.insert(book.require("a"))
    assert err.value.code == ErrorCode.CONFLICT
    assert book.active("mld") is None
    with store.transaction():
        assert book.push_activation("mld", "a") is None
        assert book.push_activation("mld", "b") == "a"
    assert book.active("mld") == "b"
    with store.transaction():
        assert book.pop_activation("mld") == ("a", "b")
        assert book.pop_activation("mld") == (None, "a")
    with pytest.raises(ProtocolError, match="nothing to roll back"):
        with store.transaction():
            book.pop_activation("mld")
    assert [c.name for c in book.list("mld")] == ["b", "a"]


def test_a_damaged_or_missing_weights_file_is_refused(store: Store, tmp_path: Path) -> None:
    book = CheckpointBook(store, tmp_path)
    ckpt = register(book, "a", tmp_path, b"x" * 1000)
    assert book.path(ckpt) == tmp_path / ckpt.file
    (tmp_path / ckpt.file).write_bytes(b"x" * 999 + b"y")
    with pytest.raises(ProtocolError, match="changed or damaged"):
        book.path(ckpt)
    (tmp_path / ckpt.file).unlink()
    with pytest.raises(ProtocolError, match="is gone"):
        book.path(ckpt)
