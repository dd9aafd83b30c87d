"""One run on several GPUs (or CPU processes): data-parallel training under ``torchrun``.

    torchrun --nproc_per_node 4 -m advlit train --experiment atas.atas --profile gpu --out runs/atas

Each of the R processes (*ranks*; NCCL on CUDA, one GPU per rank, gloo on the CPU) holds the
whole model, optimizer and method and runs the ordinary :class:`~advlit.train.Trainer`
loop, which calls this module at four places and only when R > 1:

* **Data.** The epoch's permutation and every example's crop and flip are drawn exactly as
  one process draws them (:func:`advlit.train.iterate_batches`); each global batch of B
  examples is split into R contiguous shards (sizes differ by at most one) and rank r
  trains on shard r (:meth:`DataParallel.shard`).
* **Random starts.** A random start is drawn for the whole global batch and each rank keeps
  its rows (:func:`advlit.attacks.utils.shard_of_draws`): the same numbers as one process,
  and every rank's generator stays in step.
* **Gradients.** At the optimizer's step (a step pre-hook) the ranks' gradients are summed
  with the weights of their shards,

      g = sum_r (b_r / B) g_r,      g_r = gradient of rank r's mean loss over its b_r examples,

  which is the gradient of the global batch's mean loss: every rank makes the one-process
  update (uneven shards included). Only the order of the float summations differs (within a
  rank's batch reductions and across ranks), so parameters agree with one process's to
  float tolerance, not bit for bit. torch's ``DistributedDataParallel`` module is not used:
  the attacks run extra forward and backward passes (input gradients) that its reducer
  would count as unfinished iterations, and it re-broadcasts BatchNorm buffers from rank 0
  at every forward.
* **Per-example state.** ATTA / ATAS (perturbations, step and gradient-norm buffers, ATAS's
  v) and FGSM-EP / MEP (priors, momentum) keep buffers indexed by the example. Within an
  epoch each example is in one rank's shard only, so a rank writes only its rows; at the
  end of the epoch every rank broadcasts its rows (:meth:`DataParallel.sync_examples`), so
  all ranks, and the checkpoint, hold the full buffers, bit for bit the ones the ranks
  computed. The epoch's training loss and accuracy are summed over the ranks.

Rank 0 alone validates, keeps the best weights, writes the record and the checkpoints (the
others wait at a barrier after each epoch) and runs the final evaluation (the others are
done). The checkpoint is the one-process format: a checkpoint of an R-rank run resumes on
any number of ranks, one included (on CUDA it holds the generator of rank 0's GPU only, and
each rank's GPU continues it). Rank r uses GPU ``LOCAL_RANK`` (a ``--device cuda:k`` names
the device type only). The record's ``environment`` says
``"data_parallel": {"world_size": R, ...}``.

Not the same as one process:

* **BatchNorm** normalises each rank's shard with its own statistics (B / R examples) and
  each rank keeps its own running statistics (rank 0's are saved). The papers' single-GPU
  runs have one BN batch of B; a model with BatchNorm therefore trains a (slightly)
  different function on R ranks, and a warning says so. SyncBatchNorm is not offered (it
  needs CUDA, and the attacks' extra forward passes would synchronise too).
* **Methods.** Only the methods in :data:`SUPPORTED` are sharded exactly; every other one is
  refused with one error naming it: frameworks (LAST, PIAT, ...), methods with auxiliary
  networks or optimizers or their own update rule (LAS-AT, FGSM-SDI, AWP, Free-AT, YOPO,
  ...), methods whose state links consecutive batches (FGSM-BP), random draws outside
  :func:`~advlit.attacks.utils.uniform_start` (TRADES, ...), and batch-wide statistics
  inside the attack (FGSM-MEP's ``momentum_norm="l1_batch"``).

A one-process run never imports this module (its code is therefore not part of the code
fingerprint of the records, which are one-process runs; see :mod:`advlit.fingerprint`).
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from advlit.attacks.utils import shard_of_draws
from advlit.utils import ConfigError, resolve_device

_ATTA_BUFFERS = {"delta": 0, "norm_sum": 0, "norm_count": 0, "step_last": 0, "norm_last": 0,
                 "norm_history": 1, "step_history": 1}

#: the methods a data-parallel run trains as one process does, each with its per-example
#: buffers (attribute -> the dimension indexed by the example)
SUPPORTED: dict[str, dict[str, int]] = {
    "standard": {},
    "fgsm": {},
    "fgsm_rs": {},
    "pgd_at": {},
    "atta": _ATTA_BUFFERS,
    "atas": {**_ATTA_BUFFERS, "v": 0},
    "fgsm_ep": {"delta": 0},
    "fgsm_mep": {"delta": 0, "momentum": 0},
}

#: how long a rank waits for the others (rank 0 validates while they wait)
TIMEOUT = timedelta(minutes=60)


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch of ``total`` examples that ``rank`` trains on:
    contiguous shards whose sizes differ by at most one (the first ``total % R`` are larger)."""
    base, extra = divmod(total, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


@dataclass
class DataParallel:
    """This process's place in a data-parallel run (see the module docstring)."""

    rank: int
    world_size: int
    local_rank: int = 0
    backend: str = "gloo"
    _weight: float | None = field(default=None, init=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict:
        """For the run record's ``environment``."""
        return {"world_size": self.world_size, "backend": self.backend, "batchnorm": "per-rank statistics"}

    # ------------------------------------------------------------ set-up
    def device(self, device: torch.device) -> torch.device:
        """The rank's device: its own GPU (``cuda:LOCAL_RANK``) on CUDA, else ``device``."""
        if device.type != "cuda":
            return device
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)
        return device

    def check(self, method, num_examples: int, batch_size: int) -> None:
        """Refuse a method that is not sharded exactly, and batches some rank would get no example of."""
        names = [method]
        while getattr(names[-1], "wraps", False):
            names.append(names[-1].base)
        spec = "+".join(m.name for m in names)
        name = type(method).__dict__.get("name")  # a registered class, not a subclass of one
        if len(names) > 1 or name not in SUPPORTED:
            raise ConfigError(
                f"data-parallel training ({self.world_size} processes) cannot train {spec!r}: only "
                f"{', '.join(SUPPORTED)} are sharded exactly (frameworks, auxiliary networks or optimizers, own "
                "update rules and state across batches are not); train it with one process")
        if name == "fgsm_mep" and method.momentum_norm == "l1_batch":
            raise ConfigError(f"data-parallel training cannot train fgsm_mep with momentum_norm='l1_batch' (the L1 "
                              "norm of the whole batch's gradient); use 'sign' or 'l1', or one process")
        last = num_examples % batch_size
        if batch_size < self.world_size or 0 < last < self.world_size:
            raise ConfigError(f"data-parallel training: every rank needs an example of every batch, but batch size "
                              f"{batch_size} over {num_examples} examples gives a batch of "
                              f"{min(batch_size, last or batch_size)} for {self.world_size} processes")

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Give every rank rank 0's weights and sum the gradients at each optimizer step."""
        for tensor in model.state_dict().values():
            torch_dist.broadcast(tensor, src=0)
        optimizer.register_step_pre_hook(self._reduce_gradients)
        if self.is_main and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            warnings.warn(f"data-parallel training: BatchNorm normalises each of the {self.world_size} ranks' "
                          "shards with its own statistics, unlike one process (one BN batch)", stacklevel=3)

    # ------------------------------------------------------------ per batch
    def shard(self, idx: Tensor, aug):
        """This rank's rows of a global batch: its indices and its part of the augmentation."""
        lo, hi = shard_bounds(len(idx), self.rank, self.world_size)
        if aug is not None:
            aug = type(aug)(aug.top[lo:hi], aug.left[lo:hi], aug.flip[lo:hi], aug.pad)
        return idx[lo:hi], aug

    @contextmanager
    def step(self, batch):
        """Around a method's step on this rank's shard: random starts are the rows of the global
        draw, and the optimizer step sums the ranks' gradients weighted by ``b_r / B``."""
        lo, hi = shard_bounds(batch.global_size, self.rank, self.world_size)
        self._weight = (hi - lo) / batch.global_size
        try:
            with shard_of_draws(lo, hi - lo, batch.global_size):
                yield
        finally:
            self._weight = None

    def _reduce_gradients(self, optimizer, args, kwargs) -> None:
        """The optimizer step pre-hook: ``grad <- sum_r (b_r / B) grad_r`` on every rank."""
        if self._weight is None:
            raise RuntimeError("a data-parallel optimizer step outside a batch's step")
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        groups: dict = {}
        for grad in grads:
            groups.setdefault((grad.dtype, grad.device), []).append(grad)
        for same in groups.values():
            flat = torch.cat([g.reshape(-1) for g in same]).mul_(self._weight)
            torch_dist.all_reduce(flat)
            offset = 0
            for grad in same:
                grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
                offset += grad.numel()

    # ------------------------------------------------------------ per epoch
    def sync_examples(self, method, order: Tensor, batch_size: int) -> None:
        """Every rank broadcasts the rows of the per-example buffers it wrote this epoch (the
        examples of its shards of the epoch's batches, ``order`` being the permutation)."""
        buffers = SUPPORTED[type(method).name]
        if not buffers:
            return
        rows: list[list[Tensor]] = [[] for _ in range(self.world_size)]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for r in range(self.world_size):
                lo, hi = shard_bounds(len(idx), r, self.world_size)
                rows[r].append(idx[lo:hi])
        for attr, dim in buffers.items():
            buffer = getattr(method, attr, None)
            if buffer is None or buffer.numel() == 0:
                continue
            for r in range(self.world_size):
                index = torch.cat(rows[r]).to(buffer.device)
                part = buffer.index_select(dim, index).contiguous()
                torch_dist.broadcast(part, src=r)
                if r != self.rank:
                    buffer.index_copy_(dim, index, part)

    def sum(self, values: list[float], device) -> list[float]:
        """``values`` summed over the ranks (float64)."""
        total = torch.tensor(values, dtype=torch.float64, device=device)
        torch_dist.all_reduce(total)
        return total.tolist()

    def barrier(self) -> None:
        torch_dist.barrier(device_ids=[self.local_rank] if self.backend == "nccl" else None)

    # ------------------------------------------------------------ checkpoints
    def rng_state(self, state: dict) -> dict:
        """The RNG state rank 0 saves: on CUDA only the generator of its own GPU (every rank's
        draws are rank 0's), so that the checkpoint loads on any number of GPUs."""
        if self.backend == "nccl" and "cuda" in state:
            state = {**state, "cuda": [torch.cuda.get_rng_state(self.local_rank)]}
        return state

    def restore_rng(self, state: dict) -> None:
        """After a resume: this rank's GPU continues the saved generator (on CUDA)."""
        if self.backend == "nccl" and state.get("cuda"):
            torch.cuda.set_rng_state(state["cuda"][0], self.local_rank)

    def close(self) -> None:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def start(rank: int, world_size: int, device=None, local_rank: int | None = None,
          init_method: str | None = None) -> DataParallel:
    """Join the process group of a ``world_size``-rank run (NCCL on CUDA, else gloo)."""
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    local_rank = rank if local_rank is None else local_rank
    if backend == "nccl":
        torch.cuda.set_device(local_rank)  # before the group starts: NCCL's collectives use the current GPU
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size,
                                      timeout=TIMEOUT)
    return DataParallel(rank, world_size, local_rank, backend)


def from_environment(device=None) -> DataParallel | None:
    """This process's rank when ``torchrun`` started more than one (``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``), else ``None`` (one process: the ordinary run)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    return start(int(os.environ["RANK"]), world_size, device, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                 init_method="env://")
