"""One run on several processes (advlit.distributed, issue 20): two CPU ranks (gloo) train
as one process does with the same global batch.

Tolerance. The ranks' update is the one-process update up to the order of float
summations (each rank's batch reductions over its shard, the weighted sum of the two
shards' gradients): about 1e-7 relative per step. The runs below use a small learning rate
(0.02), which keeps them out of the regime where FGSM-type training amplifies such a
difference: where an input-gradient component lies within rounding of zero its sign, hence
a perturbation pixel, can flip, and at the default 0.1 one such flip grew to 4e-3 relative
in the weights over two epochs. At 0.02 the observed gap after two epochs is 2e-7 in the
weights and 6e-7 of the scale in the per-example buffers, so parameters must agree to 1e-5
relative, 99.9 % of every buffer's entries to 1e-5 of its scale (a rare sign flip allowed)
and the epoch's training loss to 1e-6. FGSM-MEP is compared after one epoch (its buffers
agreed bit for bit): from the second epoch on it starts from the stored priors, and there
even within one process a change of the weights by 1e-7 relative grows to about 1e-3 in
one epoch (measured), so no tolerance would separate rounding from a mistake. Plausible
mistakes, tried when the test was written, are three orders of magnitude outside: an
unweighted average of the two shards' gradients moves the weights by 0.14 relative, random
starts drawn per shard instead of as rows of the global draw by 0.06, no gathering of
ATAS's buffers by 0.01 (and 60 % of the perturbations), ATAS's batch-mean gradient norm
over the shard instead of the global batch by 0.03.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from advlit.attacks.utils import shard_of_draws, uniform_start
from advlit.config import RunConfig
from advlit.distributed import SUPPORTED, DataParallel, shard_bounds
from advlit.methods import TrainContext, build_method
from advlit.runner import build_trainer
from advlit.train import CHECKPOINT, RECORD, Trainer
from advlit.utils import ConfigError
from helpers import tiny_config

REPO = Path(__file__).resolve().parents[1]
PARAM_RTOL = 1e-5
BUFFER_ATOL, BUFFER_SHARE = 1e-5, 0.999


def small_config(method: str, epochs: int) -> RunConfig:
    """digits16 (1200 training examples) in batches of 63: every batch splits 32 / 31, the
    last one (3 examples) 2 / 1, so the gradient weights b_r / B matter at every step;
    learning rate 0.02 (see the module docstring)."""
    return tiny_config(method=method, epochs=epochs, batch_size=63, lr=0.02, val_subset=32, final_subset=32,
                       final_attacks=["clean", "pgd-5"])


def _rank(rank: int, world: int, init: str, config: dict, out: str, stop_after, resume: bool) -> None:
    torch.set_num_threads(1)
    from advlit import distributed

    dist = distributed.start(rank, world, "cpu", init_method=init)
    try:
        build_trainer(RunConfig.from_dict(config), progress=False, dist=dist).fit(out, resume=resume,
                                                                                  stop_after=stop_after)
    finally:
        dist.close()


def run_ranks(tmp_path, config: RunConfig, out, stop_after=None, resume=False, world=2, timeout=240) -> None:
    """Train ``config`` on ``world`` spawned CPU ranks (gloo) into ``out``."""
    init = f"file://{tmp_path / f'pg_{time.monotonic_ns()}'}"
    context = mp.spawn(_rank, args=(world, init, config.to_dict(), str(out), stop_after, resume), nprocs=world,
                       join=False)
    deadline = time.monotonic() + timeout
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world} ranks did not finish in {timeout} s")


def load(run_dir) -> dict:
    return torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=False)


def assert_close_runs(one: dict, ranks: dict) -> None:
    """Two checkpoints within the tolerance stated in the module docstring."""
    assert one["start_epoch"] == ranks["start_epoch"]
    for name, a in one["model"].items():
        b = ranks["model"][name]
        assert (a - b).norm() <= PARAM_RTOL * a.norm() + 1e-8, name
    for name, a in one["method"].items():
        b = ranks["method"][name]
        assert a.shape == b.shape, name
        if a.numel():
            close = (a - b).abs() <= BUFFER_ATOL * a.abs().max().clamp_min(1e-12)
            assert close.float().mean() >= BUFFER_SHARE, f"{name}: {1 - close.float().mean():.2%} of entries differ"
    for a, b in zip(one["history"], ranks["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=1e-4)
    assert torch.equal(one["rng"]["torch"], ranks["rng"]["torch"])  # every rank drew what one process draws


@pytest.mark.parametrize("method,epochs", [("fgsm_rs", 2), ("atas", 2), ("fgsm_mep", 1)])
def test_two_ranks_train_as_one_process_does(tmp_path, method, epochs):
    config = small_config(method, epochs=epochs)
    one = build_trainer(config, progress=False).fit(tmp_path / "one")
    run_ranks(tmp_path, config, tmp_path / "two")
    assert_close_runs(load(tmp_path / "one"), load(tmp_path / "two"))
    record = json.loads((tmp_path / "two" / RECORD).read_text())  # written by rank 0 alone
    assert record["complete"] and record["environment"]["data_parallel"]["world_size"] == 2
    assert set(record["final"]["last"]) == set(one["final"]["last"]) and "val_robust" in record["history"][-1]
    if method == "atas":  # every example's buffers were written by one rank or the other and gathered
        assert load(tmp_path / "two")["method"]["norm_count"].eq(2).all()


def test_a_two_rank_checkpoint_resumes_on_one_process(tmp_path):
    """ATAS stopped after 2 of 3 epochs on two ranks: one process continues the checkpoint
    (full per-example buffers, one-process format) as two ranks do, within the tolerance."""
    config = small_config("atas", epochs=3)
    run_ranks(tmp_path, config, tmp_path / "one", stop_after=2)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    resumed = build_trainer(config, progress=False).fit(tmp_path / "one", resume=True)
    assert resumed["complete"] and resumed["epochs_done"] == 3 and len(resumed["history"]) == 3
    run_ranks(tmp_path, config, tmp_path / "two", resume=True)
    assert_close_runs(load(tmp_path / "one"), load(tmp_path / "two"))


def test_torchrun_trains_one_run_on_two_processes_and_refuses_an_unsharded_method(tmp_path):
    """The documented command: ``torchrun --nproc_per_node 2 -m advlit train ...``."""
    def torchrun(*args):
        env = {**os.environ, "PYTHONPATH": str(REPO), "ADVLIT_THREADS": "1", "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               "--nproc_per_node", "2", "-m", "advlit", "train", "--dataset", "digits16", "--epochs", "1",
                               "--batch-size", "64", "--val-subset", "32", "--final-subset", "32", "--attacks", "clean",
                               "--quiet", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)

    done = torchrun("--method", "fgsm_rs", "--eps", "0.2", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run record:") == 1  # rank 0 reports
    record = json.loads((tmp_path / "run" / RECORD).read_text())
    assert record["complete"] and record["environment"]["data_parallel"]["world_size"] == 2

    refused = torchrun("--method", "free_at", "--eps", "0.2", "--out", str(tmp_path / "refused"))
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.splitlines() if line.startswith("advlit: error:")]
    assert len(errors) == 1 and "cannot train 'free_at'" in errors[0], refused.stderr[-2000:]
    assert not (tmp_path / "refused" / CHECKPOINT).exists()


@pytest.mark.parametrize("method,args,message", [
    ("las_pgd_at", {}, "cannot train 'las_pgd_at'"), ("free_at", {}, "cannot train 'free_at'"),
    ("fgsm_sdi", {}, "cannot train 'fgsm_sdi'"), ("awp", {}, "cannot train 'awp'"),
    ("fgsm_bp", {}, "cannot train 'fgsm_bp'"), ("piat+fgsm_rs", {}, "cannot train 'piat\\+fgsm_rs'"),
    ("last+atas", {}, "cannot train 'last\\+atas'"),
    ("fgsm_mep", {"momentum_norm": "l1_batch"}, "momentum_norm='l1_batch'"),
])
def test_a_method_that_is_not_sharded_exactly_is_refused_with_one_error(method, args, message):
    config = tiny_config(method=method, method_args=args, epochs=1)
    with pytest.raises(ConfigError, match=message):
        Trainer(config, progress=False, dist=DataParallel(rank=0, world_size=2))  # refused before any collective


def test_a_batch_some_rank_would_get_no_example_of_is_refused():
    with pytest.raises(ConfigError, match="every rank needs an example of every batch"):
        Trainer(tiny_config(batch_size=133), progress=False, dist=DataParallel(rank=0, world_size=4))  # 1200 = 9 * 133 + 3


@pytest.mark.parametrize("total,world", [(63, 2), (3, 2), (128, 4), (5, 3), (7, 7)])
def test_shards_cover_the_batch_in_order_with_sizes_differing_by_at_most_one(total, world):
    bounds = [shard_bounds(total, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_a_shard_draws_its_rows_of_the_global_batchs_random_start():
    x = torch.rand(7, 1, 4, 4)
    torch.manual_seed(3)
    whole = uniform_start(x, 0.1)
    after_whole = torch.rand(1)
    torch.manual_seed(3)
    with shard_of_draws(4, 3, 7):
        part = uniform_start(x[4:], 0.1)
    assert torch.equal(part, whole[4:]) and torch.equal(torch.rand(1), after_whole)  # same numbers, same stream
    with shard_of_draws(0, 3, 7), pytest.raises(RuntimeError, match="only a rank's own batch"):
        uniform_start(x, 0.1)


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_every_per_example_buffer_of_a_supported_method_is_gathered(name):
    """A tensor with a dimension of the training set's size is per-example state: it must be
    listed in SUPPORTED (else the ranks would keep diverging copies of it)."""
    n = 37  # no other dimension has this size
    kwargs = {"track_norms": True} if name in ("atta", "atas") else {}
    method = build_method(name, 0.1, **kwargs)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10))
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1),
                 TrainContext(num_examples=n, input_shape=(1, 4, 4), num_classes=10, epochs=3, steps_per_epoch=2,
                              device=torch.device("cpu")))
    method.on_epoch_start(model, 0)
    found = {attr: value.shape.index(n) for attr, value in vars(method).items()
             if isinstance(value, torch.Tensor) and n in value.shape}
    assert found == SUPPORTED[name]


def test_one_process_runs_never_import_the_distributed_module(tmp_path):
    """Why advlit/distributed.py is not a core file of the fingerprint: the records' runs
    (one process, through the runner, the result cache or the command line) never run it."""
    script = ("import sys\n"
              "from advlit.cli import main\n"
              "from advlit.results import run_or_load\n"
              f"assert main(['train', '--method', 'fgsm_rs', '--dataset', 'digits16', '--epochs', '1', '--quiet', "
              f"'--val-subset', '32', '--final-subset', '32', '--attacks', 'clean', '--out', sys.argv[1]]) == 0\n"
              "assert 'advlit.distributed' not in sys.modules, 'imported'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], env={
        **env, "PYTHONPATH": str(REPO), "ADVLIT_THREADS": "1"}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
