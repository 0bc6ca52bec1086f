"""Training on several processes: DDP set-up, each process's share of a batch, gathered metrics.

torchrun and ``accelerate launch`` start the processes (on one machine or several) and tell
each one who it is through the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT); ``start`` joins them into one process group (NCCL on GPUs, gloo on CPUs) and
returns the ``Ranks`` the training loop asks whenever one process and several differ. With one
process every answer is the loop's own behaviour, so the loop reads the same either way.

The maths: ``batch_size`` is the global batch, the one the optimizer sees. Every process
builds the same length-bucketed batches (same seed, same data) and takes every
WORLD_SIZE-th feature of each (``Ranks.share``): per-process batch = batch_size / world_size,
each step's pieces come from the same length bucket (no process waits for a longer one), and
every feature is trained on once per epoch by exactly one process. Each piece's loss is
weighted by its share of the global batch, so DDP's gradient average equals the gradient of
the whole batch: the same config trains the same steps with the same learning rate as one
process does, and the same number of optimizer steps. A batch with fewer features than
processes gives the processes left without one a zero-weight pass over its first feature:
every process must join each step's gradient all-reduce.

Evaluation is sharded: each process predicts every WORLD_SIZE-th validation feature, the
outputs are gathered to every process and each one decodes and scores the whole validation
set. So every process takes the same best-epoch and early-stopping decisions from the same
numbers (no process can leave the epoch loop alone), and evaluation is WORLD_SIZE times faster.

Stop requests are agreed: each step starts an all-reduce of the processes' stop flags, which
the next step reads, so every process leaves at the same step. A process that dies or hangs
ends the others at their next collective, after at most ANNOTUNE_DISTRIBUTED_TIMEOUT_S.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from annotune.core.errors import AnnotuneError
from annotune.core.training.config import TrainConfig
from annotune.core.training.device import choose_device
from annotune.core.training.memory import OUT_OF_MEMORY

T = TypeVar("T")
TIMEOUT_ENV = "ANNOTUNE_DISTRIBUTED_TIMEOUT_S"
# The longest a process waits for the others at a collective: longer than rank 0's checkpoint
# save and the slowest process's evaluation shard, short enough that a hung process ends the
# run within minutes rather than torch's default half hour.
DEFAULT_TIMEOUT_S = 600.0
LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_processes() -> int:
    """Return how many processes the launcher started (WORLD_SIZE; 1 without a launcher)."""
    return _env_int("WORLD_SIZE", 1)


def process_rank() -> int:
    """Return this process's rank in the launch (RANK; 0 without a launcher)."""
    return _env_int("RANK", 0)


def is_main_process() -> bool:
    """Tell whether this process writes the run's files: rank 0 of a group, or the only one."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class Ranks:
    """One process: every hook of the training loop does what the loop does on its own."""

    world_size = 1
    rank = 0
    is_main = True

    def place(self, device: torch.device) -> torch.device:
        """Return the device this process trains on."""
        return device

    def describe(self) -> dict[str, Any]:
        """Return what run.json records about the processes ({} for one)."""
        return {}

    def same_on_all(self, value: T) -> T:
        """Return rank 0's ``value`` (a choice every process must share, such as precision)."""
        return value

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """Return the module the training steps call."""
        return model

    def share(self, batch: Sequence[int]) -> tuple[Sequence[int], float]:
        """Return this process's features of a global batch, and the weight of their loss."""
        return batch, 1.0

    def syncing(self, last: bool) -> AbstractContextManager[Any]:
        """Return the context of a backward pass; gradients are shared on the ``last`` one."""
        return nullcontext()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Return the mean of a scalar over the processes (each step's loss)."""
        return value

    def agreed(self, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        """Return a stop question every process answers alike, at the same step."""
        return should_stop

    def step_retry(self, retry_on_oom: Callable[..., T]) -> Callable[..., T]:
        """Return how a training step meets an out-of-memory error."""
        return retry_on_oom

    def evaluation(self, predict: Callable[..., Any]) -> Callable[..., Any]:
        """Return the loop's ``predict`` for the validation set."""
        return predict

    def close(self) -> None:
        """Leave the process group."""


class DistributedRanks(Ranks):
    """Several processes in one torch.distributed group, trained with DDP."""

    def __init__(self, world_size: int, rank: int, local_rank: int, machines: int,
                 backend: str, device: torch.device, seed: int, side_group: Any):
        self.world_size, self.rank, self.local_rank = world_size, rank, local_rank
        self.is_main = rank == 0
        self.machines, self.backend, self.device, self.seed = machines, backend, device, seed
        self.side_group = side_group  # gloo: stop flags and Python objects, never on the GPU
        self.ddp: Any = None
        self._stop: _AgreedStop | None = None

    def place(self, device: torch.device) -> torch.device:
        return self.device

    def describe(self) -> dict[str, Any]:
        return {"processes": self.world_size, "machines": self.machines,
                "backend": self.backend}

    def same_on_all(self, value: T) -> T:
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.side_group)
        return box[0]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        # buffers (BERT's position ids) never change: broadcasting them before every forward
        # pass would also add a collective per micro-batch, and processes may run different
        # numbers of micro-batches in a step (torch 2.13 renamed the option)
        options = inspect.signature(DistributedDataParallel).parameters
        quiet: dict[str, Any] = ({"forward_sync_buffers": False}
                                 if "forward_sync_buffers" in options
                                 else {"broadcast_buffers": False})
        self.ddp = DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            **quiet)
        if self.rank:  # dropout: each process its own masks (rank 0 draws as one process would)
            torch.manual_seed(self.seed + 7919 * self.rank)
        return self.ddp

    def share(self, batch: Sequence[int]) -> tuple[Sequence[int], float]:
        mine = batch[self.rank::self.world_size]
        if not mine:  # a filler pass: this process must still join the gradient all-reduce
            return batch[:1], 0.0
        # DDP averages the processes' gradients: a share weighted by world_size / len(batch)
        # per feature sums, over the processes, to the mean gradient of the whole batch
        return mine, float(self.world_size)

    def syncing(self, last: bool) -> AbstractContextManager[Any]:
        return nullcontext() if last else self.ddp.no_sync()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.world_size

    def agreed(self, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        self._stop = _AgreedStop(should_stop, self.side_group)
        return self._stop

    def step_retry(self, retry_on_oom: Callable[..., T]) -> Callable[..., T]:
        def fail_on_oom(attempt: Callable[[], T], sizes: Any, phase: str, clean: Any,
                        device: torch.device) -> T:
            # one process cannot redo its step in halves while the others wait in the
            # gradient all-reduce: the run ends and says how to make the step fit
            try:
                return attempt()
            except OUT_OF_MEMORY as error:
                raise AnnotuneError(
                    f"process {self.rank} ran out of GPU memory with "
                    f"{sizes.micro_batch_size} examples per forward pass",
                    hint="a run on several processes does not halve its batches by itself: "
                         "raise \"gradient_accumulation\" in the run's spec.json (each "
                         "process then passes batch_size / processes / gradient_accumulation "
                         "examples at once), or prepare it with a smaller --batch-size"
                ) from error

        return fail_on_oom

    def evaluation(self, predict: Callable[..., Any]) -> Callable[..., Any]:
        def sharded(model: torch.nn.Module, task: Any, features: Sequence[Any],
                    pad_token_id: int, device: torch.device, amp_dtype: Any, sizes: Any,
                    accepted: Any = None, should_stop: Any = None, with_loss: bool = False
                    ) -> tuple[list[Any], float | None]:
            # every process predicts its shard on the plain module (DDP's forward hooks would
            # wait for the others), then all shards go to every process
            mine = list(range(self.rank, len(features), self.world_size))
            outputs, loss = predict(model, task, [features[i] for i in mine], pad_token_id,
                                    device, amp_dtype, sizes, accepted, None, with_loss)
            shards: list[Any] = [None] * self.world_size
            dist.all_gather_object(shards, (mine, outputs, (loss or 0.0) * len(mine)),
                                   group=self.side_group)
            merged: list[Any] = [None] * len(features)
            loss_sum = 0.0
            for indices, pieces, shard_loss in shards:  # rank order: the same sum everywhere
                for index, piece in zip(indices, pieces, strict=True):
                    merged[index] = piece
                loss_sum += shard_loss
            scored = with_loss and bool(features) and all(f.target is not None
                                                          for f in features)
            return merged, (loss_sum / len(features) if scored else None)

        return sharded

    def close(self) -> None:
        if self._stop is not None:
            self._stop.finish()
        if dist.is_initialized():
            dist.destroy_process_group()


class _AgreedStop:
    """Answer the loop's stop question with the processes' flags of the step before.

    Each call reads the all-reduce (maximum) started by the previous call and starts the next
    one, on the CPU (gloo): no GPU synchronisation, and every process leaves at the same step.
    """

    def __init__(self, local: Callable[[], bool], group: Any):
        self.local, self.group = local, group
        self.flag = torch.zeros(1)
        self.pending: Any = None

    def __call__(self) -> bool:
        agreed = False
        if self.pending is not None:
            self.pending.wait()
            agreed = bool(self.flag.item())
        self.flag = torch.tensor([1.0 if self.local() else 0.0])
        self.pending = dist.all_reduce(self.flag, op=dist.ReduceOp.MAX, group=self.group,
                                       async_op=True)
        return agreed

    def finish(self) -> None:
        """Wait for the last flag: every process started it, so every process must end it."""
        if self.pending is not None:
            try:
                self.pending.wait()
            except Exception:  # another process is gone; leaving is all that is left to do
                pass
            self.pending = None


def start(config: TrainConfig) -> Ranks:
    """Join the processes the launcher started; ``Ranks()`` when it started only this one.

    Raises AnnotuneError, the same way on every process, when the launch cannot train.
    """
    world_size = launched_processes()
    if world_size <= 1:
        return Ranks()
    missing = [name for name in LAUNCH_VARIABLES if not os.environ.get(name)]
    if missing:
        raise AnnotuneError(f"WORLD_SIZE is {world_size} but {', '.join(missing)} "
                            f"{'is' if len(missing) == 1 else 'are'} not set",
                            hint="start the processes with torchrun or accelerate launch")
    if config.batch_size < world_size:
        raise AnnotuneError(f"batch_size {config.batch_size} is smaller than the {world_size} "
                            "processes: every process needs at least one example per step",
                            hint=f"prepare the run with --batch-size {world_size} or more (it is "
                                 "the global batch, shared by the processes)")
    rank, local_rank = process_rank(), _env_int("LOCAL_RANK", 0)
    device = choose_device(config)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise AnnotuneError(f"process {rank} would train on GPU {local_rank}, but this "
                                f"machine has {torch.cuda.device_count()}",
                                hint="start at most one process per GPU (--nproc-per-node, "
                                     "or accelerate's --num_processes)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = timedelta(seconds=timeout_s())
    dist.init_process_group(backend, timeout=timeout)
    # a group of its own for stop flags and Python objects: on the CPU even when training on
    # GPUs, and never interleaved with DDP's gradient all-reduces
    side_group = dist.new_group(backend="gloo", timeout=timeout)
    machines = max(1, world_size // max(1, _env_int("LOCAL_WORLD_SIZE", world_size)))
    return DistributedRanks(world_size, rank, local_rank, machines, backend, device,
                            config.seed, side_group)


def timeout_s() -> float:
    """Return the collective timeout in seconds (ANNOTUNE_DISTRIBUTED_TIMEOUT_S, or 600)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise AnnotuneError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds",
                            hint=f"unset it for the default of {DEFAULT_TIMEOUT_S:g} s")
    return value


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name, "").strip()
    if not text and default is not None:
        return default
    try:
        return int(text)
    except ValueError:
        raise AnnotuneError(f"the launcher's {name}={text!r} is not a whole number",
                            hint="start the processes with torchrun or accelerate launch"
                            ) from None


def report_failure(message: str) -> None:
    """Leave why this process failed in the launcher's store, where rank 0 reads it.

    The launcher's own output shows every process's error too; this puts the first cause into
    the run's record instead of the error the others saw (a connection closed by a peer).
    """
    if launched_processes() <= 1:
        return
    store = _store(timeout=5.0)
    if store is None:
        return
    rank = process_rank()
    try:
        store.set(_failure_key(rank), f"process {rank} of {launched_processes()} (on "
                                      f"{socket.gethostname()}) failed: {message}")
    except Exception:  # the launcher's store is gone too: its own output says the rest
        pass


def failure_elsewhere(wait: float = 2.0) -> str | None:
    """Return why another process of the launch failed, when one said so within ``wait`` s."""
    if launched_processes() <= 1:
        return None
    store = _store(timeout=wait)
    if store is None:
        return None
    rank = process_rank()
    keys = [_failure_key(other) for other in range(launched_processes()) if other != rank]
    deadline = time.monotonic() + wait
    while True:  # the failing process may still be on its way to saying why
        try:
            for key in keys:
                if store.check([key]):
                    return store.get(key).decode("utf-8", "replace")
        except Exception:
            return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _failure_key(rank: int) -> str:
    # a restart of the launch (torchrun --max-restarts) must not read the last attempt's
    return f"annotune/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/failure/{rank}"


def _store(timeout: float) -> Any:
    """Connect to the launcher's key-value store (MASTER_ADDR:MASTER_PORT); None when gone."""
    try:
        return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                             is_master=False, timeout=timedelta(seconds=timeout),
                             wait_for_workers=False)
    except Exception:
        return None
