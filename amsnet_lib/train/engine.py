"""The engine that trains a suite's units as Ray Core tasks, on this machine or on a cluster.

A unit is one training of the run store: a stage-1 fold (:class:`~amsnet_lib.train.units.Stage1Unit`:
FRLM, URLM or early fusion on one fold and seed) or a fusion head
(:class:`~amsnet_lib.train.units.FusionUnit`); a recipe search's trial fold
(:class:`~amsnet_lib.train.search.TrialUnit`) runs the same way, into the search's fold store. A unit
names its folders, its finished-marker and the files it stands on (:mod:`amsnet_lib.train.units`).
Each runs as one Ray task (:func:`_run_unit`) that declares what it holds: ``num_cpus`` (its torch threads) and, on a CPU, Ray ``memory``; on a GPU a
fractional ``num_gpus`` from the measured memory of one training, so that Ray packs the GPU.

Workers need no shared filesystem. The features go to them once, through the object store
(``ray.put``); a task trains into a scratch run store on its own machine and returns the fold's
files as bytes (``metrics.json``, ``curves.csv``, ``predictions.csv``, ``model.pt``, the
experiment's ``config.json``); the driver writes them into the run store atomically, the
finished-marker (``metrics.json``; a trial's ``val.json``) last, so that a fold is finished exactly
when it was before. A fusion head gets its two branch folds' files from the driver, sent with the
task; a trial fold its finished branch trial folds and the run store's weights it reuses.

Finished folds are never submitted; a task whose worker dies is run again (``max_retries``, and it
resumes from the scratch store's resume point when it lands on the same machine); an interrupted
run resumes where it stopped; Ctrl-C cancels the tasks in flight. Without an address, a Ray is
started for the call on this machine, bound to 127.0.0.1 only, and stopped after it.

``EngineConfig(serial=True)`` runs the same task function in this process, one unit after
another, with no Ray at all.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write_bytes
from ..data.features import Features
from .runstore import RunStore
from .devices import _training_device
from .units import FusionUnit, fusion_units, stage1_units

__all__ = ["EngineConfig", "pretrain", "run_units"]

# Memory one training holds at its peak, measured: with CUDA the 512-unit FRLM of Fig. 7 at batch
# 256 reached 9.5 GiB per process on an H100 (256 units: 8.3 GiB), and a worker keeps what its
# largest training cached for the ones after it; on a CPU FRLM at batch 256 holds ~3.5 GB resident.
GPU_BYTES_PER_TASK = 10 * 2**30
CPU_BYTES_PER_TASK = int(3.5 * 2**30)


@dataclass(frozen=True)
class EngineConfig:
    """Where and how the units run.

    Attributes:
        address: the head of a running Ray cluster to join (``host:port``, as ``ray start --head``
            prints it). None: ``$RAY_ADDRESS`` when set, else a Ray started for the call on this
            machine (127.0.0.1 only, no dashboard) and stopped after it.
        num_cpus: CPUs of that local Ray (default: all cores); a cluster has its own.
        threads: torch intra-op threads of each task, which is also the ``num_cpus`` it declares.
            The same seed gives the same numbers only with the same threads (float reductions).
        cpu_bytes_per_task: RAM one training holds (bytes; Ray ``memory`` of a CPU task).
        gpu_bytes_per_task: GPU memory one training holds (bytes): a GPU task declares
            ``num_gpus = 1 / floor(GPU memory / gpu_bytes_per_task)``, so 7 share an 80 GB GPU.
        max_retries: runs again of a task whose worker died (killed, out of memory, a lost node).
            A Python exception in the task is not retried: it would fail again.
        serial: no Ray: the same task function in this process, one unit after another.
    """

    address: str | None = None
    num_cpus: int | None = None
    threads: int = 1
    cpu_bytes_per_task: int = CPU_BYTES_PER_TASK
    gpu_bytes_per_task: int = GPU_BYTES_PER_TASK
    max_retries: int = 3
    serial: bool = False


# --------------------------------------------------------------------------- the task


def _scratch_root(scratch_id: str) -> Path:
    return Path(tempfile.gettempdir()) / "amsnet-units" / scratch_id


def _run_unit(unit, features: Features, device: str, threads: int, inputs: dict[str, bytes],
              scratch_id: str) -> dict[str, bytes]:
    """Train ``unit`` in a scratch run store of this machine; return its files.

    Args:
        unit: a unit of :mod:`amsnet_lib.train.units` (a stage-1 fold, a fusion head) or a search's
            trial fold (:class:`~amsnet_lib.train.search.TrialUnit`).
        features: the corpus' features (from the object store).
        device: ``cpu`` or ``cuda`` (a task sees only the GPU Ray gave it).
        threads: torch intra-op threads while it trains.
        inputs: the files it stands on (its ``inputs``), ``{path relative to the store: bytes}``.
        scratch_id: names the scratch store: the same unit of the same run store gets the same one,
            so a retried task resumes from the resume point (``partial.pt``) an earlier attempt left
            on this machine.

    Returns:
        ``{path relative to the store: bytes}`` in the order they are to be written: the files of
        the folders it wrote (and their experiments' ``config.json``), but for its inputs and resume
        points, each finished-marker after the other files, its own folder's last.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    root = _scratch_root(scratch_id)
    try:
        for rel, data in inputs.items():
            atomic_write_bytes(root / rel, data)
        store = RunStore(root)
        own = unit.in_scratch(root).train(features, store, _training_device(device), progress=False)
        files = []
        for d in unit.folders(store, features.table):
            files += [d.parent.parent / "config.json"] if (d.parent.parent / "config.json").is_file() else []
            files += sorted(f for f in d.glob("*") if f.is_file() and f.name != "partial.pt" and not f.name.startswith("."))
        rels = [f.relative_to(root).as_posix() for f in dict.fromkeys(files)]
        rels = [r for r in rels if r not in inputs]
        own_marker = (own / unit.done_marker).relative_to(root).as_posix()
        rels.sort(key=lambda r: (r == own_marker, r.endswith("/" + unit.done_marker)))
        out = {r: (root / r).read_bytes() for r in rels}
    finally:
        torch.set_num_threads(before)
    shutil.rmtree(root, ignore_errors=True)  # only after success: a failed attempt's resume point stays
    return out


def _write_unit(store: RunStore, files: dict[str, bytes]) -> None:
    """Write a unit's files into ``store`` atomically, in the order :func:`_run_unit` gives them (its
    finished-marker last); then a resume point a local run left beside them goes."""
    for rel, data in files.items():
        path = store.root / rel
        if path.name == "config.json" and path.is_file():
            continue  # an experiment's description is written once
        atomic_write_bytes(path, data)
    for folder in {(store.root / rel).parent for rel in files}:
        (folder / "partial.pt").unlink(missing_ok=True)


def _scratch_id(store: RunStore, d: Path) -> str:
    who = f"{socket.gethostname()}:{store.root.resolve()}:{d.relative_to(store.root).as_posix()}"
    return hashlib.sha256(who.encode()).hexdigest()[:16]


def _failure(unit, e: BaseException) -> str:
    hint = (" The trainings sharing a device do not fit its memory: raise EngineConfig.gpu_bytes_per_task / "
            "cpu_bytes_per_task (fewer at once)." if "out of memory" in repr(e).lower() else "")
    return (f"{unit.role} of {unit.kind}, fold {unit.fold.name}, seed {unit.seed} failed: {e!r}.{hint} "
            "Finished folds are kept; run again to resume.")


# --------------------------------------------------------------------------- Ray


@contextlib.contextmanager
def _local_ray_settings():
    """While a local Ray starts and runs: it binds and advertises 127.0.0.1, nothing else, and its
    workers run at the priority of the command that started them.

    Ray resolves a node's address to the machine's routable one unless clusters are switched off
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read by Ray's processes at start, and its constant
    in this one): a single-machine Ray then listens on loopback only.

    Ray renices its workers to 15 by default (``RAY_worker_niceness``). The workers are the
    trainings here, so on a busy machine that starves them: beside two other busy processes on two
    cores, a run of tiny folds took 15 times as long. ``nice amsnet train`` still lowers them all;
    a ``RAY_worker_niceness`` set by the user is kept.
    """
    import ray._private.ray_constants as rc

    env = {rc.ENABLE_RAY_CLUSTERS_ENV_VAR: "0"}
    if rc.RAY_WORKER_NICENESS not in os.environ:
        env[rc.RAY_WORKER_NICENESS] = "0"
    old_env, old_flag = {k: os.environ.get(k) for k in env}, rc.ENABLE_RAY_CLUSTER
    os.environ.update(env)
    rc.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        rc.ENABLE_RAY_CLUSTER = old_flag
        for var, value in old_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@contextlib.contextmanager
def ray_session(engine: EngineConfig):
    """Ray for the length of the block: the one already initialised in this process (used as it
    is), else the cluster at ``engine.address`` / ``$RAY_ADDRESS``, else a local one on 127.0.0.1."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = engine.address or os.environ.get("RAY_ADDRESS")
    quiet = dict(log_to_driver=False, logging_level="warning")
    if address:
        ray.init(address=address, **quiet)
        try:
            yield
        finally:
            ray.shutdown()
        return
    with _local_ray_settings():
        # "local": never join a head some other `ray start` left on this machine
        ray.init(address="local", num_cpus=engine.num_cpus or os.cpu_count() or 1, include_dashboard=False, **quiet)
        try:
            yield
        finally:
            ray.shutdown()


def _gpu_share(engine: EngineConfig) -> float:
    """The fraction of a GPU one task declares: 1 / (trainings that fit its memory), 4 decimals down."""
    import ray

    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
    else:  # the driver has none: ask a worker that has one
        total = ray.get(ray.remote(num_gpus=1)(_gpu_memory).remote())
    fit = max(1, int(total // engine.gpu_bytes_per_task))
    return 1.0 if fit == 1 else int(1e4 / fit) / 1e4


def _gpu_memory() -> int:
    return torch.cuda.get_device_properties(0).total_memory


def _resources(engine: EngineConfig, device: str) -> dict:
    """Ray's ``.options`` of every task: CPUs (its threads), and memory or a share of a GPU."""
    import ray

    opts = {"num_cpus": engine.threads, "max_retries": engine.max_retries}
    if device == "cuda":
        opts["num_gpus"] = _gpu_share(engine)
        return opts
    # no more than the largest node has, or the task would wait for ever on a small machine
    largest = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    opts["memory"] = int(min(engine.cpu_bytes_per_task, largest)) or None
    return {k: v for k, v in opts.items() if v is not None}


def _cluster_device(device) -> str:
    """``cpu`` or ``cuda``: as asked, else CUDA when the cluster has a GPU."""
    import ray

    if device is not None:
        return torch.device(device).type
    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


# --------------------------------------------------------------------------- driver


def run_units(units, features: Features, store: RunStore | str | os.PathLike | None = None, *,
              device: str | torch.device | None = None, engine: EngineConfig | None = None,
              progress: bool = True, desc: str = "trainings") -> int:
    """Train ``units`` (stage-1 units first, then fusion heads) and write them into ``store``.

    Units whose fold is finished are skipped, never submitted. A head is submitted as soon as
    both of its branch folds are finished with their weights.

    Args:
        units: :class:`~amsnet_lib.train.units.Stage1Unit` and :class:`~amsnet_lib.train.units.FusionUnit`.
        features: the corpus' features.
        store: run store or its directory (default ``$AMSNET_RUN_DIR`` or ``<repo>/runs``).
        device: ``cpu`` or ``cuda``; default CUDA when the cluster (serially: this machine) has one.
        engine: where and how (default: a local Ray of all cores, one thread per task).
        progress: one tqdm bar counting finished units.

    Returns:
        The number of units trained.
    """
    from tqdm.auto import tqdm

    engine = engine or EngineConfig()
    store = store if isinstance(store, RunStore) else RunStore(store)
    table = features.table
    todo = [u for u in units if not u.done(store, table)]
    if not todo:
        return 0
    # the longest first (recurrent branches, the larger the later-finishing), so that the last ones
    # running side by side are short: the run does not wait for one long straggler
    todo.sort(key=lambda u: (isinstance(u, FusionUnit), u.kind == "urlm",
                             -(u.exp.frlm.hidden_size if u.kind != "urlm" else 0)))
    bar = tqdm(total=len(todo), desc=desc, unit="fold", disable=not progress)
    try:
        if engine.serial:
            dev = str(_training_device(device))
            for u in todo:
                d = u.folders(store, table)[0]
                _write_unit(store, _run_unit(u, features, dev, engine.threads, u.inputs(store, table), _scratch_id(store, d)))
                bar.set_postfix_str(f"{u.kind} {u.fold.name}")
                bar.update()
        else:
            with ray_session(engine):
                _run_on_ray(todo, features, store, device, engine, bar)
    finally:
        bar.close()
    return len(todo)


def _run_on_ray(todo, features, store: RunStore, device, engine: EngineConfig, bar) -> None:
    import ray

    table = features.table
    device = _cluster_device(device)
    task = ray.remote(_run_unit).options(**_resources(engine, device))
    feats = ray.put(features)  # once; every task reads the same copy
    flight: dict = {}

    def submit(u):
        d = u.folders(store, table)[0]
        flight[task.remote(u, feats, device, engine.threads, u.inputs(store, table), _scratch_id(store, d))] = u

    heads = [u for u in todo if isinstance(u, FusionUnit)]
    for u in todo:
        if not isinstance(u, FusionUnit):
            submit(u)

    def submit_ready_heads():
        ready = [h for h in heads if h.branches_ready(store, table)]
        if not flight and not ready:
            ready = list(heads)  # branches the run cannot provide: each head trains its own (as run_experiment)
        for h in ready:
            heads.remove(h)
            submit(h)

    def write(u, files):
        _write_unit(store, files)
        bar.set_postfix_str(f"{u.kind} {u.fold.name}")

    _drain(flight, write, bar, refill=submit_ready_heads, failure=_failure)


def _drain(flight: dict, write, bar, *, refill=None, failure=None) -> None:
    """Wait for the Ray tasks in ``flight`` (``{ObjectRef: item}``) and hand each one's result to
    ``write(item, result)`` in this process as it finishes, one ``bar`` step each.

    ``refill()``, called before each wait, may submit more tasks into ``flight``; the loop ends
    when none is in flight after it. A task that raised stops the run (``failure(item, error)``
    words the message); on any error, Ctrl-C included, the tasks still in flight are cancelled, so
    nothing keeps running unseen.
    """
    import ray

    try:
        while True:
            if refill is not None:
                refill()
            if not flight:
                return
            (ref,), _ = ray.wait(list(flight), num_returns=1)
            item = flight.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:
                if failure is None:
                    raise
                raise RuntimeError(failure(item, e)) from e
            write(item, result)
            bar.update()
    except BaseException:
        for ref in flight:
            ray.cancel(ref, force=True)
        raise


def pretrain(
    exps,
    features: Features,
    *,
    store: RunStore | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    engine: EngineConfig | None = None,
    progress: bool = True,
    fusion: bool = False,
) -> int:
    """Train every stage-1 fold the experiments need (and with ``fusion`` their fusion heads) through Ray.

    The trainings land in the run store exactly as :func:`~amsnet_lib.train.training.run_experiment`
    would write them (same keys, seeds and code, one torch thread per task by default), so a later
    ``run_experiment`` of any of ``exps`` finds them finished. Experiments that share a branch
    share its trainings; the heads of shared configurations are trained once.

    Args:
        exps: experiment configurations (e.g. :func:`amsnet_lib.studies.full_suite`).
        features: the corpus' features.
        store, device, engine, progress: as for :func:`run_units`.
        fusion: also train the fusion heads (AMSNet, concatenation, late fusion) of ``exps``.

    Returns:
        The number of trainings run (0 when everything was finished).
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    units = stage1_units(exps, features.table, store) + (fusion_units(exps, features.table, store) if fusion else [])
    return run_units(units, features, store, device=device, engine=engine, progress=progress,
                     desc="trainings" if fusion else "stage-1 trainings")
