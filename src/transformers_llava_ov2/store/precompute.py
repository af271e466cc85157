"""Fill a :class:`~.video_store.VideoStore` from a list of videos: one task per video, two engines.

:func:`process_video` is the task (resume check, tokenize, store; never raises: a bad video becomes a
``failed`` result with a reason). The engines only schedule it:

* ``local`` — a process pool (fork) of ``workers`` processes, torch limited to one thread per worker; a
  worker that dies (a crash in a decoder) fails only its own video: the videos in flight are re-run
  one at a time and the one that kills its worker again is recorded as ``WorkerCrashed``;
* ``ray`` — a Ray Data ``map`` over the videos on a local Ray instance or a cluster (``address``); each
  task writes its entry to the shared store folder. Requires the ``ray`` extra.

:func:`run_precompute` adds the progress bar (videos/s, ETA), the JSONL failure log and the summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..codec.config import CodecConfig
from .config import FrontEndConfig, canonical_config, config_from_canonical

__all__ = [
    "PrecomputeSpec",
    "PrecomputeSummary",
    "default_workers",
    "process_video",
    "run_local",
    "run_precompute",
    "run_ray",
]

Task = Callable[["PrecomputeSpec", str], dict]
Emit = Callable[[dict], None]


@dataclass(frozen=True)
class PrecomputeSpec:
    """What every task needs (picklable; sent to the workers).

    Attributes:
        store: the store folder.
        config: ``canonical_config`` of the front-end configuration (see :mod:`.config`).
        image_format / jpeg_quality: image encoding of new entries.
        decode_thread: the codec tokenizer's background decode thread (output-neutral, not in the key);
            :func:`run_precompute` turns it off when several tasks share the CPUs, where it only adds
            contention.
    """

    store: str
    config: dict
    image_format: str = "npy"
    jpeg_quality: int = 95
    decode_thread: bool = True

    @classmethod
    def create(cls, store: str | os.PathLike, config: FrontEndConfig, **kwargs: Any) -> PrecomputeSpec:
        return cls(store=str(Path(store).expanduser().absolute()), config=canonical_config(config), **kwargs)


@dataclass
class PrecomputeSummary:
    """Counts and rates of one precompute run.

    ``video_hours_per_compute_hour`` = seconds of video tokenized in this run / (wall seconds x workers),
    i.e. per worker-hour; ``video_hours_per_wall_hour`` is the same over the wall clock alone.
    """

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    video_seconds: float = 0.0
    task_seconds: float = 0.0
    workers: int = 1
    engine: str = "local"
    peak_rss_mb: float = 0.0
    stored_bytes: int = 0

    @property
    def videos_per_second(self) -> float:
        """Videos tokenized (``done``) per wall-clock second."""
        return self.done / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def video_hours_per_wall_hour(self) -> float:
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def video_hours_per_compute_hour(self) -> float:
        return self.video_hours_per_wall_hour / max(self.workers, 1)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out.update(
            videos_per_second=self.videos_per_second,
            video_hours_per_wall_hour=self.video_hours_per_wall_hour,
            video_hours_per_compute_hour=self.video_hours_per_compute_hour,
        )
        return out

    def text(self) -> str:
        """The summary lines the CLI prints."""
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.failed_by_reason.items())) or "-"
        return "\n".join(
            [
                f"videos: {self.total} (done {self.done}, skipped {self.skipped}, failed {self.failed})",
                f"failed by reason: {reasons}",
                f"engine: {self.engine}, workers: {self.workers}, wall: {self.wall_seconds:.1f} s, "
                f"{self.videos_per_second:.2f} videos/s",
                f"video tokenized: {self.video_seconds / 3600:.3f} h = {self.video_hours_per_wall_hour:.1f} h of "
                f"video per wall hour, {self.video_hours_per_compute_hour:.1f} per worker-hour",
                f"stored: {self.stored_bytes / 1e6:.1f} MB new, peak worker memory {self.peak_rss_mb:.0f} MB",
            ]
        )


def default_workers() -> int:
    """Processes for the local engine: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_STORES: dict[tuple, Any] = {}


def _limit_threads() -> None:
    """One torch thread per worker (the pool already runs one video per CPU)."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def _entry_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def process_video(spec: PrecomputeSpec, video: str) -> dict:
    """Tokenize one video into the store unless its entry exists; never raises.

    Returns:
        ``{"video", "status": "done"|"skipped"|"failed", "reason", "message", "key", "seconds",
        "duration", "bytes", "peak_rss_mb", "pid"}`` (``reason`` is the exception's class name).
    """
    from .video_store import VideoStore

    _limit_threads()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"video": video, "status": "failed", "reason": "", "message": "", "key": ""}
    out.update(seconds=0.0, duration=0.0, bytes=0, pid=os.getpid())
    try:
        sid = (spec.store, spec.image_format, spec.jpeg_quality)
        store = _STORES.get(sid)
        if store is None:
            store = _STORES[sid] = VideoStore(
                spec.store, image_format=spec.image_format, jpeg_quality=spec.jpeg_quality
            )
        config = config_from_canonical(spec.config)
        if isinstance(config, CodecConfig) and not spec.decode_thread:
            config = config.replace(decode_thread=False)
        key = store.key(video, config)
        out["key"] = key
        if store.has(video, config):
            out["status"] = "skipped"
        else:
            result, _ = store.fetch_or_compute(video, config)
            out.update(
                status="done", duration=float(result.duration), bytes=_entry_bytes(store.entry_dir(key))
            )
    except Exception as exc:  # a bad video must never stop the job
        out.update(status="failed", reason=type(exc).__name__, message=str(exc)[:500])
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _failed(video: str, reason: str, message: str) -> dict:
    return {
        "video": video,
        "status": "failed",
        "reason": reason,
        "message": message,
        "key": "",
        "seconds": 0.0,
        "duration": 0.0,
        "bytes": 0,
        "peak_rss_mb": 0.0,
        "pid": 0,
    }


def run_local(
    videos: Sequence[str], spec: PrecomputeSpec, emit: Emit, *, workers: int, task: Task = process_video
) -> None:
    """Run ``task`` over ``videos`` on a pool of ``workers`` processes, calling ``emit`` with each result."""
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    queue: deque[str] = deque(videos)
    isolate: deque[str] = deque()  # in flight when a worker died: re-run one at a time
    while queue or isolate:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        inflight: dict[Any, str] = {}
        lost: list[str] = []
        solo = False
        try:
            while queue or isolate or inflight:
                solo = bool(isolate) or (solo and bool(inflight))
                source = isolate if solo else queue
                limit = 1 if solo else 2 * workers
                while len(inflight) < limit and source:
                    v = source.popleft()
                    inflight[pool.submit(task, spec, v)] = v
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in done:
                    v = inflight.pop(fut)
                    try:
                        emit(fut.result())
                    except BrokenProcessPool:
                        lost.append(v)
                    except Exception as exc:  # e.g. a result that cannot be sent back
                        emit(_failed(v, type(exc).__name__, str(exc)[:500]))
                if lost:
                    break
        except BrokenProcessPool:  # submit() on a pool that just broke
            pass
        finally:
            for fut, v in inflight.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    emit(fut.result())  # finished before the pool broke
                else:
                    lost.append(v)
            pool.shutdown(wait=True, cancel_futures=True)
        if solo and len(lost) == 1:
            emit(_failed(lost[0], "WorkerCrashed", "the worker process died while tokenizing this video"))
        else:
            isolate.extend(lost)


def _ray_row(row: dict, spec: PrecomputeSpec) -> dict:
    return process_video(spec, row["video"])


def run_ray(
    videos: Sequence[str],
    spec: PrecomputeSpec,
    emit: Emit,
    *,
    workers: int | None,
    address: str | None = None,
) -> None:
    """Run :func:`process_video` over ``videos`` as a Ray Data job; ``emit`` gets each result as it streams in.

    Starts a local Ray instance (``workers`` CPUs) unless Ray is already initialised or ``address`` names
    a cluster. Videos whose task never returns (its worker died, after Ray's retries) are reported as
    ``WorkerCrashed``.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise ImportError("the ray engine needs Ray: pip install 'transformers-llava-ov2[ray]'") from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None and workers:
            kwargs["num_cpus"] = workers
        ray.init(address=address, **kwargs)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.max_errored_blocks = -1  # a crashed task loses its video, not the job
        ds = ray.data.from_items([{"video": v} for v in videos], override_num_blocks=max(1, len(videos)))
        compute = ray.data.TaskPoolStrategy(size=workers) if workers else None
        ds = ds.map(_ray_row, fn_kwargs={"spec": spec}, num_cpus=1, compute=compute)
        seen: set[str] = set()
        for row in ds.iter_rows():
            result = dict(row)
            seen.add(result["video"])
            emit(result)
        for v in videos:
            if v not in seen:
                emit(_failed(v, "WorkerCrashed", "the Ray task of this video did not return"))
    finally:
        if started:
            ray.shutdown()


def _log_failure(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "video": result["video"],
        "reason": result["reason"],
        "message": result["message"],
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def run_precompute(
    videos: Iterable[str],
    spec: PrecomputeSpec,
    *,
    workers: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    failure_log: str | os.PathLike | None = None,
    pre_failed: Sequence[tuple[str, str, str]] = (),
    progress: bool = True,
    task: Task = process_video,
) -> PrecomputeSummary:
    """Tokenize every video into the store (skipping stored ones) and return the summary.

    Args:
        videos: video paths (duplicates are processed once).
        spec: store folder, configuration and image encoding.
        workers: processes (local) or concurrent tasks (ray); default :func:`default_workers`.
        engine: ``"local"`` or ``"ray"``.
        ray_address: Ray cluster address (``None``: start a local instance).
        failure_log: JSONL file that gets one ``{"video", "reason", "message", "time"}`` line per failure
            (appended); ``None`` = ``<store>/failures.jsonl``.
        pre_failed: ``(video_or_record, reason, message)`` failures found before the run (bad dataset
            records); counted and logged like the others.
        progress: show a tqdm bar (videos/s, ETA) on stderr.
        task: the per-video task (tests inject one; the default is :func:`process_video`).
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    from tqdm.auto import tqdm

    from .video_store import VideoStore

    items = list(dict.fromkeys(videos))
    workers = workers or default_workers()
    if workers > 1 or engine == "ray":
        spec = dataclasses.replace(spec, decode_thread=False)
    VideoStore(spec.store, image_format=spec.image_format)  # create / validate before any worker starts
    log_path = Path(failure_log) if failure_log is not None else Path(spec.store) / "failures.jsonl"
    summary = PrecomputeSummary(total=len(items) + len(pre_failed), workers=workers, engine=engine)
    reasons: Counter[str] = Counter()
    bar = tqdm(total=len(items), unit="video", desc="precompute", file=sys.stderr, disable=not progress)

    def emit(result: dict) -> None:
        status = result["status"]
        if status == "done":
            summary.done += 1
            summary.video_seconds += float(result["duration"])
            summary.task_seconds += float(result["seconds"])
            summary.stored_bytes += int(result["bytes"])
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
            reasons[result["reason"]] += 1
            _log_failure(log_path, result)
        summary.peak_rss_mb = max(summary.peak_rss_mb, float(result["peak_rss_mb"]))
        bar.update(1)
        bar.set_postfix(done=summary.done, skipped=summary.skipped, failed=summary.failed, refresh=False)

    for where, reason, message in pre_failed:
        summary.failed += 1
        reasons[reason] += 1
        _log_failure(log_path, _failed(where, reason, message))
    t0 = time.perf_counter()
    try:
        if engine == "local":
            run_local(items, spec, emit, workers=workers, task=task)
        else:
            run_ray(items, spec, emit, workers=workers, address=ray_address)
    finally:
        bar.close()
        summary.wall_seconds = time.perf_counter() - t0
        summary.failed_by_reason = dict(reasons)
    return summary
