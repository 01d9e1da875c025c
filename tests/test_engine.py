"""The Ray engine: the same run store and numbers as serial training, retries, resumption, a cluster by address."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from amsnet_lib import cli
from amsnet_lib.train import engine
from amsnet_lib.train.engine import EngineConfig, run_units
from amsnet_lib.train.units import Stage1Unit, stage1_units
from amsnet_lib.train.runstore import RunStore
from test_cli import _corpus
from test_training import _exp, _features

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")

TIMINGS = ("seconds", "fusion_seconds")  # wall time: the one thing two runs of a fold may differ in


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the module (as `amsnet pretrain` starts it: 127.0.0.1 only); the
    engine uses a Ray already initialised in the process as it is, so each test skips the start-up.
    (Ray is imported where it is used: the other pytest-xdist worker collects this module too.)"""
    import ray

    with engine.ray_session(EngineConfig(num_cpus=2)):
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        ray.get([ray.remote(num_cpus=1)(lambda: os.getpid()).remote() for _ in range(2)])  # workers up, listening too
        if sys.platform.startswith("linux"):  # this process and every Ray process it started: loopback only
            listening = _listening_addresses(_descendants(os.getpid()) | {os.getpid()})
            assert listening and listening <= {"127.0.0.1", "::1"}, listening
        yield


def test_the_local_rays_workers_run_at_the_priority_of_the_command(local_ray):
    """Ray renices its workers to 15 by default; the trainings would then starve beside any busy process."""
    import ray

    pids = ray.get([ray.remote(num_cpus=1)(lambda: os.getpid()).remote() for _ in range(2)])
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {os.getpriority(os.PRIO_PROCESS, 0)}


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def assert_same_run_store(a: Path, b: Path) -> None:
    """Same files; curves and predictions byte for byte, the same weights, metrics but for wall times."""
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    for rel, pa in fa.items():
        pb = fb[rel]
        if pa.name in ("metrics.json", "val.json"):  # val.json: a search's trial fold
            ma, mb = json.loads(pa.read_text()), json.loads(pb.read_text())
            assert {k: v for k, v in ma.items() if k not in TIMINGS} == {k: v for k, v in mb.items() if k not in TIMINGS}, rel
        elif pa.name == "model.pt":
            sa, sb = torch.load(pa, weights_only=True), torch.load(pb, weights_only=True)
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), rel
        else:
            assert pa.read_bytes() == pb.read_bytes(), rel


@pytest.mark.slow
def test_quick_suite_through_ray_writes_the_run_store_serial_training_writes(tmp_path, local_ray, capsys):
    """`amsnet pretrain --fusion --models amsnet` of the quick suite (tiny networks, one epoch) as Ray tasks on 2
    CPUs and one after another in this process: the same run store, file by file, the same numbers."""
    corpus = _corpus(tmp_path)
    base = ["pretrain", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
            "--profile", "quick", "--studies", "", "--no-loso", "--fusion", "--threads", "1", "--models", "amsnet"]
    assert cli.main(base + ["--cpus", "2", "--run-dir", str(tmp_path / "ray")]) == 0
    out = capsys.readouterr().out
    trained = int(re.search(r"trained (\d+) ", out).group(1))
    # AMSNet's: both branches' folds (stage 1), then the fusion heads on them (the other fusion models'
    # heads are the same kind of unit)
    assert "Ray tasks on this machine" in out and trained == len(list((tmp_path / "ray").rglob("metrics.json"))) == 15
    assert cli.main(base + ["--serial", "--run-dir", str(tmp_path / "serial")]) == 0
    assert "one after another in this process" in capsys.readouterr().out
    assert_same_run_store(tmp_path / "ray", tmp_path / "serial")
    assert not list((tmp_path / "ray").rglob("partial.pt"))


def test_train_with_workers_trains_the_folds_as_ray_tasks_then_reports_them(tmp_path, local_ray, capsys):
    corpus = _corpus(tmp_path)
    args = ["train", "--corpus", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--duration", "1.0",
            "--model", "amsnet", "--profile", "quick", "--summary", "", "--threads", "1", "--run-dir", str(tmp_path / "runs")]
    assert cli.main(args + ["--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "training: Ray tasks on this machine (2 CPUs)" in out and "[protocol: paper]" in out
    assert len(list((tmp_path / "runs").glob("amsnet-*/seed0/fold*/metrics.json"))) == 5
    table = out[out.index("fold"):]
    assert cli.main(args + ["--finished-only"]) == 0  # what the tasks wrote is what the report reads
    assert table in capsys.readouterr().out


def test_units_trained_as_ray_tasks_equal_training_in_process(tmp_path, local_ray):
    """A fold trained by a Ray task is the fold run_experiment trains in process with one thread;
    a second run submits nothing, and a fold whose files are lost is the only one trained again."""
    from amsnet_lib.train.training import run_experiment

    feats = _features()
    exps = [_exp("amsnet"), _exp("concat"), _exp("early")]
    store = tmp_path / "ray"
    assert engine.pretrain(exps, feats, store=store, device="cpu", progress=False, fusion=True) == 3 * 3 + 2 * 3
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for exp in exps:
            run_experiment(exp, feats, store=tmp_path / "alone", device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert_same_run_store(store, tmp_path / "alone")

    assert engine.pretrain(exps, feats, store=store, device="cpu", progress=False, fusion=True) == 0
    stamps = {rel: p.stat().st_mtime_ns for rel, p in _files(store).items()}
    lost = next(iter(sorted(store.glob("urlm-*/seed0/fold1"))))
    (lost / "metrics.json").unlink()
    assert engine.pretrain(exps, feats, store=store, device="cpu", progress=False, fusion=True) == 1
    rewritten = {rel for rel, p in _files(store).items() if p.stat().st_mtime_ns != stamps.get(rel)}
    assert rewritten and all(rel.startswith(lost.relative_to(store).as_posix()) for rel in rewritten)
    assert_same_run_store(store, tmp_path / "alone")


def test_out_of_memory_failures_name_the_setting_that_packs_fewer():
    u = stage1_units([_exp("frlm")], _features().table)[0]
    oom = engine._failure(u, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 300.00 MiB"))
    assert "gpu_bytes_per_task" in oom and "run again to resume" in oom
    assert "bytes_per_task" not in engine._failure(u, ValueError("bad"))


def test_a_gpu_task_declares_the_share_of_a_gpu_one_training_needs(monkeypatch):
    # an 80 GB H100 (79.2 GiB): 16 processes ran it out of memory; 7 of 10 GiB fit
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 85_020_000_000}))
    share = engine._gpu_share(EngineConfig())
    assert int(1 / share) == 7 and 7 * share <= 1
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 8 * 2**30}))
    assert engine._gpu_share(EngineConfig()) == 1.0  # a small GPU: one at a time


def _listening_addresses(pids: set[int]) -> set[str]:
    """The local IPv4 addresses of the TCP sockets ``pids`` listen on (from /proc: no ss needed)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:  # gone, or not ours to read
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                found.add(_ip(f[1].split(":")[0]))
    return found


def _ip(hexaddr: str) -> str:
    """An address of /proc/net/tcp{,6} (little-endian words) as text; IPv4-mapped IPv6 as IPv4."""
    raw = b"".join(bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, len(hexaddr), 8))
    if len(raw) == 16 and raw[:12] == bytes(10) + b"\xff\xff":
        raw = raw[12:]
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p} - found
        found |= kids
        todo += kids
    return found


@pytest.mark.slow
def test_search_trial_folds_on_ray_equal_the_serial_ones_and_reuse_run_store_weights(tmp_path, local_ray):
    """A search's trial folds trained as Ray tasks (side by side, the branches' run-store weights sent
    with them) give the files and figures of the serial path; nothing evaluates a test fold."""
    from amsnet_lib.train import search
    from amsnet_lib.train.training import run_experiment

    feats = _features()
    exp = _exp("amsnet")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_experiment(_exp("urlm"), feats, store=tmp_path / "runs", device="cpu", progress=False)  # URLM's weights
        serial = search.validation_score(exp, feats, tmp_path / "serial", device="cpu", progress=False,
                                         weights_from=tmp_path / "runs")
    finally:
        torch.set_num_threads(threads)
    on_ray = search.validation_score(exp, feats, tmp_path / "ray", device="cpu", progress=False,
                                     weights_from=tmp_path / "runs", engine=EngineConfig(num_cpus=2))
    assert_same_run_store(tmp_path / "ray", tmp_path / "serial")
    cols = ["fold", "val_loss", "val_wa", "val_ua", "best_epoch"]
    assert on_ray.folds[cols].equals(serial.folds[cols]) and len(on_ray.folds) == 3
    assert all("weights_from" in json.loads(p.read_text()) for p in (tmp_path / "ray").glob("urlm-*/seed0/*/val.json"))
    assert not list((tmp_path / "ray").rglob("predictions.csv"))


@pytest.mark.slow
def test_a_search_trial_fold_is_an_engine_unit_whose_failure_names_it(tmp_path, local_ray):
    """A trial fold runs through the engine's one path (run_units): a failing one stops the run with
    the engine's message naming the trial fold, and the search's fold store keeps no half-written fold."""
    import ray

    from amsnet_lib.train.search import TrialUnit

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    feats = _features()
    fold = stage1_units([_exp("frlm")], feats.table)[0].fold
    unit = _FailingTrial(_exp("urlm"), fold, 0)
    with pytest.raises(RuntimeError, match="search trial fold of urlm, fold fold0, seed 0 failed: .*no data here.*run again to resume"):
        run_units([unit], feats, tmp_path / "search", device="cpu", progress=False)
    assert not list((tmp_path / "search").rglob("val.json"))
    assert not TrialUnit(_exp("urlm"), fold, 0).done(RunStore(tmp_path / "search"), feats.table)


def _failing_trial_base():
    from amsnet_lib.train.search import TrialUnit

    return TrialUnit


@dataclass(frozen=True)
class _FailingTrial(_failing_trial_base()):
    def train(self, features, store, device, progress=False):
        raise ValueError("no data here")


# Last in the module: these kill Ray workers, whose replacements would cost the tests after them a
# start-up each (a worker imports torch and the package again).

@dataclass(frozen=True)
class _DiesOnce(Stage1Unit):
    """A unit whose first attempt kills its worker process (as the kernel's OOM killer or a lost node would)."""

    marker: str = ""

    def train(self, features, store, device, progress=False):
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return super().train(features, store, device, progress)


def _dies_once(tmp_path, feats):
    import dataclasses

    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
    u = stage1_units([_exp("frlm")], feats.table)[0]
    return _DiesOnce(**{f.name: getattr(u, f.name) for f in dataclasses.fields(u)}, marker=str(tmp_path / "died"))


def test_a_task_whose_worker_dies_is_run_again_and_the_run_completes(tmp_path, local_ray):
    feats = _features()
    unit = _dies_once(tmp_path, feats)
    assert run_units([unit], feats, tmp_path / "ray", device="cpu", progress=False) == 1
    assert (tmp_path / "died").exists()  # the first attempt did die
    d = RunStore(tmp_path / "ray").fold_dir(unit.kind, unit.key, unit.seed, unit.fold.name)
    assert (d / "metrics.json").is_file()
    # the retry trained the fold the serial path trains
    run_units([stage1_units([_exp("frlm")], feats.table)[0]], feats, tmp_path / "serial", device="cpu", progress=False,
              engine=EngineConfig(serial=True))
    assert_same_run_store(tmp_path / "ray", tmp_path / "serial")


def test_without_retries_a_dead_worker_fails_the_run_with_the_fix(tmp_path, local_ray):
    feats = _features()
    unit = _dies_once(tmp_path, feats)
    with pytest.raises(RuntimeError, match="stage-1 training of frlm, fold fold0, seed 0 failed: WorkerCrashedError.*run again to resume"):
        run_units([unit], feats, tmp_path / "ray", device="cpu", progress=False, engine=EngineConfig(max_retries=0))
    assert not list((tmp_path / "ray").rglob("metrics.json"))


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_in_flight_and_keeps_what_finished(tmp_path, local_ray, monkeypatch):
    """Ctrl-C while the driver writes the first finished fold: the other tasks are cancelled (forced:
    a training checks for no signal), the exception reaches the caller, and a rerun trains the rest."""
    import ray

    feats = _features()
    units = stage1_units([_exp("frlm")], feats.table)
    cancelled, write = [], engine._write_unit

    def interrupted(store, files):
        write(store, files)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_write_unit", interrupted)
    real_cancel = ray.cancel
    monkeypatch.setattr(ray, "cancel", lambda ref, force=False: (cancelled.append(force), real_cancel(ref, force=force)))
    with pytest.raises(KeyboardInterrupt):
        run_units(units, feats, tmp_path / "ray", device="cpu", progress=False)
    assert cancelled == [True, True]  # the two units not yet written
    assert len(list((tmp_path / "ray").rglob("metrics.json"))) == 1
    monkeypatch.undo()
    # the rerun in this process: the cancelled tasks' workers are gone, and replacing them would cost
    # two worker start-ups for nothing this test checks
    assert run_units(units, feats, tmp_path / "ray", device="cpu", progress=False, engine=EngineConfig(serial=True)) == 2


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the cluster's sockets from /proc")
def test_a_second_process_joins_a_running_cluster_on_loopback_by_address(tmp_path, local_ray):
    """Last in the module (its job's workers displace the idle ones of this driver's job, which the
    tests before it reuse): a driver in another process joins a running cluster by its address (``--ray-address``,
    docs/CLUSTER.md) and trains there: the module's cluster stands in for a head (one Ray start-up
    fewer for the suite), and every socket the cluster holds open, its new workers' included, listens
    on loopback only. Its tasks declare both CPUs (``threads=2``): one at a time, so its job starts one
    worker, not two (a worker's start-up costs more CPU than the three tiny folds)."""
    import ray

    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    script = tmp_path / "join.py"
    script.write_text(
        "import sys, ray\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_training import _exp, _features\n"
        "from amsnet_lib.train import engine\n"
        f"n = engine.pretrain([_exp('frlm')], _features(), store={str(tmp_path / 'runs')!r}, device='cpu', progress=False,\n"
        f"                    engine=engine.EngineConfig(address={address!r}, threads=2))\n"
        "print('trained', n, 'on', ray.util.get_node_ip_address() if ray.is_initialized() else 'a closed session')\n")
    joined = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert "trained 3 on a closed session" in joined.stdout  # the joining driver disconnects; the cluster stays
    assert len(list((tmp_path / "runs").glob("frlm-*/seed0/fold*/metrics.json"))) == 3
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2  # still up for this driver
    listening = _listening_addresses(_descendants(os.getpid()))
    assert listening and listening <= {"127.0.0.1", "::1"}, listening
