"""What a run will do: the time budget, the hardware and the images -> backbone, size, batch, epochs.

``make_plan`` turns a budget ("10m") into settings ``fine_tune`` takes, with one reason per
decision, printed before any time is spent. ``Deadline`` (a Keras callback) then keeps the
training inside that budget: it measures the real time per step in the first steps, re-plans
the epochs it will reach, stops before an epoch that would not finish in time (the best
checkpoint is kept by the learner) and records the time spent, so a resumed run spends only
what is left.

Importing this module imports neither Keras nor a backend: the hardware probe
(`kagglekit.hardware`, re-exported here) asks ``nvidia-smi`` and the environment, and looks at a
backend only when it is already imported or asked for. ``Deadline`` lives in `kagglekit.deadline`
and is imported (with Keras) on first access of ``kagglekit.plan.Deadline``.

Cost model (seconds per training image per epoch, see ``estimate_seconds_per_image``)::

    compute = 3 * forward_gflops(backbone, size) * 1e9 * slowness(backbone) / flops(hardware)
    seconds = compute + overhead(hardware)

``forward_gflops`` is the backbone's forward cost at its reference size (scaled by the square
of the size), ``flops`` the training throughput the hardware reaches (CPU: per core, measured
on a 2-core x86 machine with kagglekit's own models; GPU: by model name, else by memory),
``overhead`` the per-image cost that does not shrink with the model (framework, copies).
Prediction costs ``PREDICT_SHARE`` of a training image. Measured values replace the model:
pass ``seconds_per_image`` (e.g. ``Deadline.seconds_per_image`` of an earlier run).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from .durations import format_duration, parse_duration
from .errors import PlanError
from .hardware import Device, Hardware, cores

__all__ = ["DEFAULT_BUDGET_S", "Device", "Hardware", "ImageStats", "Plan", "PlanError", "batch_size_for",
           "estimate_seconds_per_image", "format_duration", "forward_gflops", "make_plan", "parse_duration"]

# ------------------------------------------------------------------ defaults (documented in the README)
#: Budget of a run without ``--time``: a first baseline on this kind of hardware (seconds).
DEFAULT_BUDGET_S: dict[str, float] = {"cpu": 600.0, "gpu": 1200.0, "tpu": 1200.0}
#: Backbones tried in order when none is named: (pretrained?, hardware kind) -> candidates.
CANDIDATES: dict[tuple[bool, str], tuple[str, ...]] = {
    (False, "cpu"): ("resnet_compact", "resnet_micro"),  # resnet_micro: a quarter of the cost, for short budgets
    (False, "gpu"): ("wide_resnet", "resnet_small"),
    (False, "tpu"): ("wide_resnet", "resnet_small"),
    (True, "cpu"): ("mobilenetv2",),
    (True, "gpu"): ("resnet50", "efficientnetb0", "mobilenetv2"),
    (True, "tpu"): ("resnet50", "efficientnetb0"),
}
#: Epochs per size a plan aims for (it lowers the size before going below) and never exceeds.
TARGET_EPOCHS, MAX_EPOCHS = {False: 20, True: 3}, {False: 30, True: 8}
#: Largest input size per (pretrained?, hardware kind); the images' own size and the backbone's default cap it too.
SIZE_CAP = {(False, "cpu"): 128, (False, "gpu"): 192, (False, "tpu"): 192,
            (True, "cpu"): 224, (True, "gpu"): 384, (True, "tpu"): 384}
#: Pretrained features need some resolution: small images may be upscaled up to this factor (never from scratch).
PRETRAINED_UPSCALE = 2.0
#: Photos are never planned below this size (unless they are smaller themselves).
MIN_PHOTO_SIZE = 64
#: Share of the training time the plan fills; the rest absorbs estimate errors (Deadline trims the plan).
FILL = 0.9
#: fine_tune's default peak learning rate on one device: fine-tuning pretrained weights, and from scratch
#: (measured on the zoo benchmark's Plant Seedlings, 2,000 images, 3 min on 2 cores: resnet_compact 0.774 at 1e-3,
#: 0.888 at 3e-3; resnet_micro 0.910 and 0.968). With N devices the plan's batch is N times one device's and its
#: learning rate N times this (the linear scaling rule, Goyal et al. 2017), capped at 8x.
BASE_LR, SCRATCH_LR = 1e-3, 3e-3
MAX_LR_SCALE = 8
#: TTA views are cut down until predicting takes at most this share of the budget.
RESERVE_SHARE = 0.25
#: A prediction costs this share of a training step per image (forward only, no optimizer).
PREDICT_SHARE = 0.4

# The architectures' cost facts (forward GFLOPs, slowness per FLOP, training memory per image) are the registry's:
# one record per architecture in kagglekit.backbones.catalog, read through kagglekit.backbones.get (no Keras).
CPU_OVERHEAD_S, GPU_OVERHEAD_S = 0.0008, 0.0002  # per-image overhead in seconds (framework, copies)
# Fixed costs: start (imports, data scan, model build; what `spent_s` already covers is not counted twice)
# and each stage (compile/trace, caching the images at a new size). CPU: 12 s measured for a stage on 2 cores.
STARTUP_S, STAGE_S = {"cpu": 20.0, "gpu": 45.0, "tpu": 60.0}, {"cpu": 12.0, "gpu": 20.0, "tpu": 30.0}
#: After training: writing the submission and records (the 2-minute zoo ended 1.9-3.1 s after training stopped,
#: prediction included), and saving the learner and last checkpoint: 8 bytes a parameter at SAVE_BYTES_PER_S.
WRITE_S, SAVE_BYTES_PER_S = 2.5, 100e6
DECODE_S_PER_MEGAPIXEL = 0.018  # per core, JPEG through kagglekit.images (reduce-on-decode)
DECODE_S_MIN = 0.0004
#: Environment variable scaling the cost model (make_plan's cost_scale): 2 plans for a machine twice as slow.
COST_SCALE_ENV = "KAGGLEKIT_COST_SCALE"


# ------------------------------------------------------------------ images
@dataclass(frozen=True)
class ImageStats:
    """Sizes of a table's images, from a sample of their headers: count, median and percentile sides."""

    count: int
    sampled: int
    median_height: float
    median_width: float
    median_side: float  # the shorter side
    p10_side: float
    p90_side: float

    @classmethod
    def from_sizes(cls, sizes: Iterable[tuple[int, int]], count: int | None = None) -> "ImageStats":
        """Return the statistics of (height, width) pairs; `count` is the number of images they stand for."""
        import numpy as np

        hw = np.asarray([tuple(s) for s in sizes], dtype=float).reshape(-1, 2)
        if not len(hw):
            raise PlanError("No readable image sizes to plan from; check the table's paths (kagglekit.images.scan_images).")
        short = hw.min(axis=1)
        return cls(int(count if count is not None else len(hw)), len(hw), float(np.median(hw[:, 0])),
                   float(np.median(hw[:, 1])), float(np.median(short)), float(np.percentile(short, 10)),
                   float(np.percentile(short, 90)))

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike], sample: int = 300, seed: int = 0) -> "ImageStats":
        """Return the statistics of up to `sample` of `paths`, read from image headers only (PIL, no decode)."""
        import numpy as np
        from PIL import Image

        paths = list(paths)
        rng = np.random.default_rng(seed)
        chosen = [paths[i] for i in rng.permutation(len(paths))[:sample]] if len(paths) > sample else paths

        def size(path) -> tuple[int, int] | None:
            try:
                with Image.open(path) as im:
                    return im.size[1], im.size[0]
            except Exception:  # noqa: BLE001 - unreadable files are the scan's business, not the plan's
                return None

        with ThreadPoolExecutor(min(8, cores() * 2)) as pool:
            sizes = [s for s in pool.map(size, chosen) if s is not None]
        return cls.from_sizes(sizes, count=len(paths))

    @classmethod
    def from_table(cls, table: Any, sample: int = 300, seed: int = 0) -> "ImageStats":
        """Return the statistics of a `LabelTable`'s images (a sample of `sample` headers)."""
        return cls.from_paths(table.paths, sample=sample, seed=seed)

    @property
    def megapixels(self) -> float:
        """Return the median picture's size in megapixels."""
        return self.median_height * self.median_width / 1e6

    def describe(self) -> str:
        """Return one line: the images' typical size."""
        return (f"{self.count} images, median {self.median_height:.0f}x{self.median_width:.0f} "
                f"(shorter side {self.p10_side:.0f}-{self.p90_side:.0f} for 80%; {self.sampled} headers read)")


# ------------------------------------------------------------------ cost model
def _arch(backbone: str) -> Any:
    """Return the registry record of `backbone` (its cost facts; the registry imports no Keras)."""
    from . import backbones

    return backbones.get(backbone)


def forward_gflops(backbone: str, size: int) -> float:
    """Return the forward GFLOPs of one `size` x `size` image through `backbone` (as a ResNet50 when unknown)."""
    return _arch(backbone).forward_gflops(size)


def _slowness(backbone: str, hardware: Hardware) -> float:
    """Return the backbone's seconds per FLOP relative to dense convolutions on this hardware (measured where known)."""
    return _arch(backbone).slowness_on(hardware.kind)


def estimate_seconds_per_image(backbone: str, size: int, hardware: Hardware) -> float:
    """Return the estimated seconds one training image costs per epoch (forward, backward, update)."""
    compute = 3 * forward_gflops(backbone, size) * 1e9 * _slowness(backbone, hardware) / hardware.train_flops
    return compute + (CPU_OVERHEAD_S if hardware.kind == "cpu" else GPU_OVERHEAD_S)


def write_seconds(backbone: str) -> float:
    """Return the estimated seconds after training that do not depend on the images: writing, saving the model."""
    return WRITE_S + 8 * float(_arch(backbone).params or 0) / SAVE_BYTES_PER_S


def decode_seconds(stats: "ImageStats", n_images: int, hardware: Hardware) -> float:
    """Return the estimated seconds to decode and cache `n_images` once at one size (all cores)."""
    per_image = max(DECODE_S_MIN, DECODE_S_PER_MEGAPIXEL * stats.megapixels)
    return n_images * per_image / hardware.cores


def batch_size_for(backbone: str, size: int, hardware: Hardware, n_train: int | None = None) -> tuple[int, str]:
    """Return (batch size, reason): CPU a constant, accelerators from their memory; at least 8 steps an epoch."""
    if hardware.kind == "cpu" or not hardware.device_memory_gb:
        batch = 64 if size <= 64 else 32
        why = (f"batch {batch}: CPU, {'small' if size <= 64 else 'large'} inputs" if hardware.kind == "cpu"
               else f"batch {batch}: accelerator memory unknown")
    else:
        mb = _arch(backbone).memory_mb_at(size)  # the registry's training memory per image
        usable = 0.5 * hardware.device_memory_gb * 1024  # half the memory: weights, optimizer, workspace
        fits = max(8, int(usable / max(mb, 1e-3)))
        batch = min(256, 2 ** int(math.log2(fits)))
        why = f"batch {batch}: ~{mb:.0f} MB per image at {size} px fits {fits} in half of {hardware.device_memory_gb:.0f} GiB"
    if n_train and batch > max(8, n_train // 8):
        batch = max(8, 2 ** int(math.log2(max(8, n_train // 8))))
        why += f"; lowered to {batch} so {n_train} images make at least 8 steps an epoch"
    return batch * max(1, len(hardware.devices)), why


# ------------------------------------------------------------------ the plan
@dataclass
class Plan:
    """What a run will do and why: fine_tune's settings, the time they should take, one reason per decision."""

    backbone: str
    weights: str | None
    sizes: list[int]
    epochs: int  # per size, as fine_tune takes it
    freeze_epochs: int
    batch_size: int
    budget_s: float
    reserve_s: float  # kept back for prediction, TTA and writing the submission
    train_s: float  # estimated training seconds
    seconds_per_image: float  # training, at the last size
    hardware: str
    tta: int = 4  # the most TTA views prediction should use (job: choose_tta among 0..tta)
    spent_s: float = 0.0  # already spent of the budget when planned
    startup_s: float = 0.0  # estimated seconds before training starts (not yet spent)
    valid_s: float = 0.0  # estimated seconds of the first validation pass (tracing included)
    budget_given: bool = False
    reasons: list[str] = field(default_factory=list)
    lr: float | None = None  # a peak learning rate the plan sets (several devices), else fine_tune's default

    @property
    def total_epochs(self) -> int:
        """Return the training epochs over all sizes (frozen ones included)."""
        return (self.epochs + (self.freeze_epochs if self.weights else 0)) * len(self.sizes)

    @property
    def estimated_s(self) -> float:
        """Return the estimated seconds of the whole run: already spent, start, training, prediction and writing."""
        return self.spent_s + self.startup_s + self.train_s + self.reserve_s

    def fine_tune_kwargs(self) -> dict:
        """Return the arguments of ``fine_tune`` this plan sets (backbone, weights, sizes, epochs, ...)."""
        return {"backbone": self.backbone, "weights": self.weights, "sizes": list(self.sizes), "epochs": self.epochs,
                "freeze_epochs": self.freeze_epochs, "batch_size": self.batch_size,
                **({"lr": self.lr} if self.lr is not None else {})}

    def to_dict(self) -> dict:
        """Return the plan as a JSON-ready dict (for the run state)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        """Return the plan saved by `to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def deadline(self, spent_s: float = 0.0, **kwargs: Any) -> "Deadline":
        """Return a `Deadline` callback for this plan's budget and reserve (imports Keras)."""
        from .deadline import Deadline

        kwargs.setdefault("valid_s", self.valid_s)
        return Deadline(self.budget_s, spent_s=spent_s, reserve_s=self.reserve_s, batch_size=self.batch_size,
                        size=self.sizes[-1], **kwargs)

    def describe(self, time_driven: bool = False) -> str:
        """Return the plan as text: a summary line, then one reason a line (`time_driven`: training runs until the
        deadline, as in kagglekit run, so the epochs are the cost model's estimate, not a count that ends it)."""
        per, left = " per size" if len(self.sizes) > 1 else "", self.budget_s - self.spent_s - self.startup_s - self.reserve_s
        head = (f"plan: {self.backbone} ({'weights ' + str(self.weights) if self.weights else 'from scratch'}), size "
                f"{' -> '.join(map(str, self.sizes))}, " + ("trained until the deadline" if time_driven else
                f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}{per}") + f", batch {self.batch_size}; "
                f"{'all' if time_driven else '~' + format_duration(self.estimated_s)} of a {format_duration(self.budget_s)} budget")
        reasons = [f"epochs: as many as fit, ~{self.epochs * max(0.0, left) / max(self.train_s, 1e-9):.0f}{per} at the cost "
                   "model's speed (time-driven: the learning rate warms up and decays to zero at the deadline)"
                   if time_driven and r.startswith("epochs ") else r for r in self.reasons]
        return "\n".join([head] + [f"  - {r}" for r in reasons])

    def __str__(self) -> str:
        return self.describe()


def _entry(name: str) -> tuple[int, int, bool]:
    """Return (default size, min size, has pretrained weights) of a backbone, from the registry."""
    entry = _arch(name)
    return entry.default_size, entry.min_size, entry.pretrained


def _cost_scale(value: float | None) -> float:
    """Return the cost model's scale: `value`, else ``$KAGGLEKIT_COST_SCALE``, else 1 (PlanError when not a positive number)."""
    text = value if value is not None else os.environ.get(COST_SCALE_ENV) or 1.0
    try:
        scale = float(text)
    except (TypeError, ValueError):
        scale = -1.0
    if not math.isfinite(scale) or scale <= 0:
        raise PlanError(f"cost scale {text!r} ({COST_SCALE_ENV} or cost_scale) must be a positive number, e.g. 2 or 0.5.")
    return scale


def _round_size(x: float, mult: int, lower: int, upper: int) -> int:
    """Return `x` rounded up to a multiple of `mult`, kept within [lower, upper]."""
    return int(min(upper, max(lower, mult * math.ceil(x / mult - 1e-9))))


@dataclass
class _Option:
    """What one backbone can do in a budget: its sizes, epochs, batch and costs, and why."""

    backbone: str
    sizes: list[int]
    epochs: int
    afford: float  # epochs per size the time allows
    train_s: float
    reserve_s: float
    spi: float
    batch: int
    reasons: list[str]
    tta: int
    need_s: float


@dataclass(frozen=True)
class _Run:
    """What a plan is made from, checked: the hardware, the images, the weights and the choices asked (as given)."""

    hw: Hardware
    stats: ImageStats
    pretrained: bool
    weights: str | None  # None: from scratch
    n_train: int
    n_valid: int
    n_test: int
    views: int  # the most TTA views asked
    spent_s: float  # already spent of the budget
    startup: float  # seconds before training this session has not yet spent
    scale: float  # the cost model's scale
    measured: float | None  # a measured training cost per image
    measured_at: int | None
    sizes: list[int] | None  # asked
    epochs: int | None  # asked
    batch_size: int | None  # asked
    backbone: str | None  # asked

    @property
    def kind(self) -> str:
        """Return the hardware's kind: "cpu", "gpu" or "tpu"."""
        return self.hw.kind

    @property
    def need(self) -> int:
        """Return the epochs per size a plan aims for: those asked, else the target."""
        return self.epochs or TARGET_EPOCHS[self.pretrained]

    def left_s(self, budget: float, reserve_s: float) -> float:
        """Return the seconds of `budget` left for training once start, prediction and writing are kept back."""
        return budget - self.spent_s - self.startup - reserve_s


@dataclass(frozen=True)
class _Costs:
    """Estimated seconds of training a backbone at some sizes, and of what follows the training."""

    fixed: float  # every stage's compiling, caching and frozen stage
    per_epoch: float  # one epoch over all sizes
    reserve: float  # prediction with `views` TTA views, and writing
    views: int


def _run_facts(n_train: int, image_stats: ImageStats, hardware: Hardware | None, *, weights: str | None,
               backbone: str | None, epochs: int | None, sizes: Sequence[int] | int | None, batch_size: int | None,
               n_valid: int | None, n_test: int, tta: int, seconds_per_image: float | None, measured_at: int | None,
               spent_s: float, cost_scale: float | None) -> _Run:
    """Return the facts a plan is made from (see `make_plan`), after checking what was asked (PlanError naming it)."""
    hw = hardware or Hardware.probe()
    scale = _cost_scale(cost_scale)
    pretrained = weights is not None and str(weights).lower() not in ("none", "")
    n_train = max(1, int(n_train))
    n_valid = int(round(n_train / 4)) if n_valid is None else int(n_valid)
    views = max(1, int(tta))
    startup = max(0.0, STARTUP_S[hw.kind] - float(spent_s))
    asked_sizes = None if sizes is None else [int(s) for s in ([sizes] if isinstance(sizes, (int, float)) else sizes)]
    if asked_sizes is not None and (not asked_sizes or min(asked_sizes) < 1):
        raise PlanError(f"sizes={sizes!r} must be one or more positive input sizes, e.g. 64 or [64, 128].")
    if epochs is not None and int(epochs) < 1:
        raise PlanError(f"epochs={epochs!r} must be 1 or more; leave it out to plan the epochs from the budget.")
    return _Run(hw=hw, stats=image_stats, pretrained=pretrained, weights=weights if pretrained else None,
                n_train=n_train, n_valid=n_valid, n_test=n_test, views=views, spent_s=spent_s, startup=startup,
                scale=scale, measured=float(seconds_per_image) if seconds_per_image else None,
                measured_at=measured_at, sizes=asked_sizes, epochs=epochs, batch_size=batch_size, backbone=backbone)


def _size_step(name: str) -> int:
    """Return the multiple `name`'s input sizes are rounded to: 8 for a from-scratch family, else 32."""
    return 8 if _arch(name).from_scratch else 32


def _lowest_size(run: _Run, name: str) -> int:
    """Return the smallest input size planned for `name`: its own minimum, at least 32 pretrained and 8 from scratch."""
    return max(_entry(name)[1], 32 if run.pretrained else 8)


def _size_ladder(run: _Run, name: str) -> tuple[list[list[int]], list[str]]:
    """Return (the sizes to try for `name`, largest first, each one list per stage; why, with "{size}" to fill)."""
    default_size, _min_size, _has_weights = _entry(name)
    if run.sizes:
        return [run.sizes], [f"size {' -> '.join(map(str, run.sizes))}: asked"]
    kind, mult, side, stats = run.kind, _size_step(name), run.stats.median_side, run.stats
    cap = SIZE_CAP[(run.pretrained, kind)] if _arch(name).from_scratch or not run.pretrained else min(
        SIZE_CAP[(True, kind)], default_size)
    cap = max(mult, cap // mult * mult)
    want = side * (PRETRAINED_UPSCALE if run.pretrained and side * PRETRAINED_UPSCALE < default_size else 1.0)
    lower = _lowest_size(run, name)
    natural = _round_size(min(want, default_size if run.pretrained else want), mult, lower, cap)
    floor = _round_size(min(side, MIN_PHOTO_SIZE), mult, lower, natural)
    ladder = [[s] for s in range(natural, floor - 1, -mult)] or [[natural]]
    shape = f"{stats.median_height:.0f}x{stats.median_width:.0f} (median)"
    if want > side + 1:
        why = (f"size {{size}}: images are {shape}; pretrained features need some resolution, "
               f"upscaled {PRETRAINED_UPSCALE:g}x at most")
    elif side <= natural:
        why = f"size {{size}}: images are {shape}; not upscaled beyond {natural} (the next multiple of {mult})"
    else:
        why = f"size {{size}}: images are {shape}; at most {cap} for {name} on {kind.upper()}, never below {floor}"
    return ladder, [why]


def _cost_factor(run: _Run, name: str, first: list[int]) -> float:
    """Return what multiplies the cost model's estimates for `name`: a measured cost over the estimate, else the scale."""
    if run.measured is None:
        return run.scale
    at = run.measured_at or first[-1]
    return run.measured / estimate_seconds_per_image(name, at, run.hw)


def _reserve(run: _Run, name: str, size: int, factor: float, budget: float) -> tuple[float, int]:
    """Return (seconds kept back for prediction and writing, TTA views: the most asked within RESERVE_SHARE, else 1)."""
    last = estimate_seconds_per_image(name, size, run.hw) * factor * PREDICT_SHARE
    for views in range(run.views, 0, -1):
        reserve = (write_seconds(name) + decode_seconds(run.stats, run.n_test, run.hw)
                   + last * (run.n_valid * 2 * views + run.n_test * views))
        if reserve <= RESERVE_SHARE * (budget - run.spent_s):
            break
    return reserve, views


def _costs(run: _Run, name: str, sizes: list[int], factor: float, budget: float) -> _Costs:
    """Return the estimated costs of training `name` at `sizes` in `budget`, and of predicting after it."""
    kind, fixed, per_epoch = run.kind, 0.0, 0.0
    for s in sizes:
        spi = estimate_seconds_per_image(name, s, run.hw) * factor
        fixed += STAGE_S[kind] + decode_seconds(run.stats, run.n_train + run.n_valid, run.hw)
        if run.pretrained:  # the frozen stage: features once, then the head
            fixed += STAGE_S[kind] + (run.n_train + run.n_valid) * spi * PREDICT_SHARE
        per_epoch += run.n_train * spi + run.n_valid * spi * PREDICT_SHARE
    reserve, views = _reserve(run, name, sizes[-1], factor, budget)
    return _Costs(fixed=fixed, per_epoch=per_epoch, reserve=reserve, views=views)


def _afford(run: _Run, budget: float, cost: _Costs) -> float:
    """Return the epochs per size `budget` affords at `cost` (FILL of what is left; infinite without a budget)."""
    return (run.left_s(budget, cost.reserve) * FILL - cost.fixed if budget else math.inf) / cost.per_epoch


def _fit_size(run: _Run, name: str, budget: float, ladder: list[list[int]],
              factor: float) -> tuple[list[int], _Costs, float]:
    """Return (sizes, their costs, epochs afforded): the largest on `ladder` that affords the epochs wanted, else the smallest."""
    for sizes in ladder:
        cost = _costs(run, name, sizes, factor, budget)
        afford = _afford(run, budget, cost)
        if afford >= run.need:
            break
    return sizes, cost, afford


def _progressive(run: _Run, name: str, budget: float, sizes: list[int],
                 factor: float) -> tuple[list[int], _Costs, float] | None:
    """Return (half size and size, their costs, epochs afforded) when time allows progressive resizing, else None."""
    if run.sizes or sizes[0] < 96 or not budget:
        return None
    half = [_round_size(sizes[0] / 2, _size_step(name), _lowest_size(run, name), sizes[0]), sizes[0]]
    cost = _costs(run, name, half, factor, budget)
    afford = _afford(run, budget, cost)
    if half[0] < half[1] and afford >= run.need and run.epochs is None:
        return half, cost, afford
    return None


def _option(run: _Run, name: str, budget: float) -> _Option:
    """Return what backbone `name` can do in `budget`: its sizes, epochs, batch and costs, and why."""
    ladder, why = _size_ladder(run, name)
    factor = _cost_factor(run, name, ladder[0])
    sizes, cost, afford = _fit_size(run, name, budget, ladder, factor)
    progressive = _progressive(run, name, budget, sizes, factor)
    if progressive:
        sizes, cost, afford = progressive
        why.append(f"progressive sizes {sizes[0]} -> {sizes[1]}: time allows {TARGET_EPOCHS[run.pretrained]}+ "
                   f"epochs at each (cheap epochs at half size first)")
    why = [w.replace("{size}", str(sizes[-1])) for w in why]
    if not run.sizes and sizes[-1] < ladder[0][-1]:
        why.append(f"size lowered from {ladder[0][-1]} to {sizes[-1]}: the larger size would not afford "
                   f"{run.need} epochs")
    n_ep = int(run.epochs) if run.epochs is not None else int(
        min(MAX_EPOCHS[run.pretrained], max(1, math.floor(afford))))
    spi = estimate_seconds_per_image(name, sizes[-1], run.hw) * factor
    batch, batch_why = (int(run.batch_size), f"batch {run.batch_size}: asked") if run.batch_size else \
        batch_size_for(name, sizes[-1], run.hw, run.n_train)
    why += [batch_why, f"speed: ~{spi * 1e3:.2f} ms per training image at {sizes[-1]} px "
            f"({'measured' if run.measured is not None else 'cost model'}; {run.n_train} train + {run.n_valid} "
            f"valid images: ~{format_duration(cost.per_epoch)} an epoch)"]
    need_s = run.spent_s + run.startup + cost.reserve + (cost.fixed + cost.per_epoch) / FILL  # the budget one epoch needs
    return _Option(backbone=name, sizes=sizes, epochs=n_ep, afford=afford, train_s=cost.fixed + n_ep * cost.per_epoch,
                   reserve_s=cost.reserve, spi=spi, batch=batch, reasons=why, tta=cost.views, need_s=need_s)


def _budget(run: _Run, budget_s: str | float | None, first: str) -> tuple[float, bool, str]:
    """Return (budget seconds, whether it was given, why): the one asked, else what the epochs asked take with
    backbone `first` (with room to spare), else the hardware's default."""
    if budget_s is None and run.epochs is not None:
        probe = _option(run, first, math.inf)
        budget = max(DEFAULT_BUDGET_S[run.kind], 1.25 * (run.startup + probe.train_s + probe.reserve_s))
        return budget, False, f"budget {format_duration(budget)}: no --time given, so {run.epochs} epochs (asked) set it"
    if budget_s is None:
        budget = DEFAULT_BUDGET_S[run.kind]
        return budget, False, (f"budget {format_duration(budget)}: the default first baseline on {run.kind.upper()} "
                               f"(give --time / time_budget to change it)")
    budget = parse_duration(budget_s)
    return budget, True, f"budget {format_duration(budget)}: asked" + (
        f", {format_duration(run.spent_s)} already spent" if run.spent_s else "")


def _options(run: _Run, candidates: list[str], budget: float) -> list[_Option]:
    """Return the options of the candidate backbones in order, up to the first that affords the epochs wanted."""
    options = []
    for name in candidates:
        options.append(_option(run, name, budget))
        if options[-1].afford >= run.need:
            break
    return options


def _choose(run: _Run, options: list[_Option]) -> _Option:
    """Return the first option that affords the epochs wanted; when none does, the first, unless another affords clearly more."""
    best = next((o for o in options if o.afford >= run.need), None)
    if best is None:
        most = max(options, key=lambda o: o.afford)
        best = most if most.afford >= 1.5 * options[0].afford else options[0]
    return best


def _budget_for_one_epoch(run: _Run, best: _Option, default: float) -> tuple[float, _Option, str]:
    """Return (budget seconds, the option in it, why) when the `default` budget does not afford one epoch of `best`."""
    budget = float(math.ceil(best.need_s / 60) * 60)
    best = _option(run, best.backbone, budget)
    return budget, best, (f"budget {format_duration(budget)}: the default {format_duration(default)} on "
                          f"{run.kind.upper()} does not afford one epoch of {best.backbone} at {best.sizes[-1]} px "
                          f"on {run.n_train} images (give --time to set it)")


def _check_budget(run: _Run, best: _Option, budget: float, given: bool) -> None:
    """Raise PlanError, naming the budget that would do, when a budget given cannot even start training."""
    left = run.left_s(budget, best.reserve_s)
    if not (given and run.spent_s == 0 and (left <= 0 or best.afford < 0)):
        return
    what = (f"starting and predicting {run.n_test} test images alone take "
            f"~{format_duration(run.startup + best.reserve_s)}" if left <= 0 else
            f"{best.backbone} at {best.sizes[-1]} px cannot even start training on {run.n_train} images (caching, "
            f"{'frozen stage, ' if run.pretrained else ''}compiling) in what is left")
    raise PlanError(f"time budget {format_duration(budget)} is too short: {what}; give at least "
                    f"--time {math.ceil(best.need_s / 60)}m" + (" (or weights none: a from-scratch model is "
                                                                 "cheaper)" if run.pretrained else "") + ".")


def _fact_reasons(run: _Run) -> list[str]:
    """Return the reasons that state the facts: the hardware, the images and the cost model's scale."""
    why = [f"hardware: {run.hw.describe()}", f"images: {run.stats.describe()}"]
    if run.scale != 1.0:
        why.append(f"cost model scaled {run.scale:g}x (cost_scale / {COST_SCALE_ENV})")
    return why


def _backbone_reason(run: _Run, best: _Option, candidates: list[str], options: list[_Option]) -> str:
    """Return why the plan's backbone: asked, the first pretrained one that affords the target, or a from-scratch one."""
    if run.backbone:
        return f"backbone {best.backbone}: asked"
    if run.pretrained:
        return (f"backbone {best.backbone}: pretrained ({run.weights}); "
                + ("the cheapest with ImageNet weights on CPU" if run.kind == "cpu" else
                   f"first of {', '.join(candidates)} that affords {TARGET_EPOCHS[True]}+ epochs"))
    return (f"backbone {best.backbone}: no pretrained weights, so a from-scratch ResNet sized to "
            f"{run.kind.upper()} (tried {', '.join(o.backbone for o in options)})")


def _epochs_reason(run: _Run, best: _Option, budget: float) -> str:
    """Return why the plan's epochs: asked, one that does not fit, the most worth running, or what the time affords."""
    left = run.left_s(budget, best.reserve_s)
    if run.epochs is not None:
        return f"epochs {best.epochs}: asked" + (
            f"; they need ~{format_duration(best.train_s)}, more than the budget leaves "
            f"(~{format_duration(max(0.0, left))}): the deadline will stop early" if best.afford < best.epochs else "")
    if best.afford < 1:
        return (f"epochs 1: one epoch needs more than the budget leaves (~{format_duration(max(0.0, left))}); "
                "the deadline stops inside it; give a longer --time for a full epoch")
    if best.epochs >= MAX_EPOCHS[run.pretrained] and best.afford > best.epochs:
        return (f"epochs {best.epochs}: the most worth running {'fine-tuning' if run.pretrained else 'from scratch'}"
                f"; the data is small, so the run ends early "
                f"(~{format_duration(run.startup + best.train_s + best.reserve_s)})")
    return (f"epochs {best.epochs}{' per size' if len(best.sizes) > 1 else ''}: what "
            f"{FILL:.0%} of the ~{format_duration(max(0.0, left))} left for training affords "
            f"(the rest absorbs estimate errors)")


def _learning_rate(run: _Run, best: _Option) -> tuple[float | None, list[str]]:
    """Return (peak learning rate, why): one device's times the devices sharing a batch (capped), else (None, [])."""
    devices, base_lr = max(1, len(run.hw.devices)), BASE_LR if run.pretrained else SCRATCH_LR
    if devices <= 1 or run.batch_size:
        return None, []
    scale = min(devices, MAX_LR_SCALE)
    lr = base_lr * scale
    return lr, [f"lr {lr:g}: {devices} devices share each batch of {int(best.batch)} ({int(best.batch) // devices} "
                f"per device), so the learning rate is {scale}x one device's {base_lr:g} (linear scaling"
                f"{', capped at ' + str(MAX_LR_SCALE) + 'x' if devices > MAX_LR_SCALE else ''}); --lr sets it"]


def _reserve_reason(run: _Run, best: _Option) -> str:
    """Return why the time kept back for prediction and writing, with the TTA views it allows."""
    return (f"kept back {format_duration(best.reserve_s)} for prediction and writing: up to {best.tta} TTA "
            f"view{'s' if best.tta != 1 else ''} of {run.n_test} test and {run.n_valid} validation images"
            + (f" ({run.views} would take over {RESERVE_SHARE:.0%} of the budget)" if best.tta < run.views else ""))


def _plan(run: _Run, best: _Option, *, budget: float, given: bool, reasons: list[str], lr: float | None) -> Plan:
    """Return the `Plan` of the chosen option."""
    return Plan(backbone=best.backbone, weights=run.weights if run.weights is None else str(run.weights),
                sizes=[int(s) for s in best.sizes], epochs=int(best.epochs), freeze_epochs=1 if run.pretrained else 0,
                batch_size=int(best.batch), budget_s=float(budget), reserve_s=float(best.reserve_s),
                train_s=float(best.train_s), seconds_per_image=float(best.spi), hardware=run.hw.describe(),
                tta=best.tta, spent_s=float(run.spent_s), startup_s=run.startup,
                valid_s=run.n_valid * best.spi * PREDICT_SHARE + STAGE_S[run.kind] / 2, budget_given=given,
                reasons=reasons, lr=lr)


def make_plan(
    n_train: int,
    image_stats: ImageStats,
    hardware: Hardware | None = None,
    budget_s: str | float | None = None,
    *,
    weights: str | None = "imagenet",
    backbone: str | None = None,
    epochs: int | None = None,
    sizes: Sequence[int] | int | None = None,
    batch_size: int | None = None,
    n_valid: int | None = None,
    n_test: int = 0,
    tta: int = 4,
    seconds_per_image: float | None = None,
    measured_at: int | None = None,
    spent_s: float = 0.0,
    cost_scale: float | None = None,
) -> Plan:
    """Return the `Plan` (backbone, sizes, epochs, batch, reserve, reasons) for a budget on this hardware.

    Args:
        n_train, n_valid, n_test: images trained on, validated on (default n_train / 4) and predicted.
        image_stats: the images' sizes (`ImageStats.from_table`).
        hardware: default `Hardware.probe()`.
        budget_s: seconds or a duration text ("10m"); None: `DEFAULT_BUDGET_S` for the hardware
            (or, with explicit `epochs`, enough for them).
        weights: "imagenet", a file, or None / "none" (from scratch: a small ResNet sized to the hardware).
        backbone, epochs, sizes, batch_size: explicit choices; they always win, the rest is planned around them.
        tta: the most test-time views prediction may use (time is kept back for them).
        seconds_per_image: a measured training cost per image (e.g. ``Deadline.seconds_per_image``),
            at size `measured_at` (default: the size planned); it replaces the cost model's estimate.
        spent_s: seconds already spent of the budget.
        cost_scale: multiplies every estimated training and prediction cost (2: plan as if the machine were
            twice as slow as the cost model says, 0.5: twice as fast); default ``$KAGGLEKIT_COST_SCALE`` or 1.
            A time-driven run (no explicit epochs) still trains until its deadline: this checks it does.
    """
    run = _run_facts(n_train, image_stats, hardware, weights=weights, backbone=backbone, epochs=epochs, sizes=sizes,
                     batch_size=batch_size, n_valid=n_valid, n_test=n_test, tta=tta,
                     seconds_per_image=seconds_per_image, measured_at=measured_at, spent_s=spent_s,
                     cost_scale=cost_scale)
    candidates = [backbone] if backbone else list(CANDIDATES[(run.pretrained, run.kind)])
    budget, given, budget_why = _budget(run, budget_s, candidates[0])
    options = _options(run, candidates, budget)
    best = _choose(run, options)
    if epochs is None and best.afford < 1 and not given:  # the default budget must afford one epoch
        budget, best, budget_why = _budget_for_one_epoch(run, best, budget)
    _check_budget(run, best, budget, given)
    lr, lr_why = _learning_rate(run, best)
    reasons = [*_fact_reasons(run), budget_why, _backbone_reason(run, best, candidates, options), *best.reasons,
               _epochs_reason(run, best, budget), *lr_why, _reserve_reason(run, best)]
    return _plan(run, best, budget=budget, given=given, reasons=reasons, lr=lr)


def __getattr__(name: str) -> Any:
    """Return `Deadline` (from kagglekit.deadline, a Keras callback) on first access: ``import kagglekit.plan`` stays Keras-free."""
    if name == "Deadline":
        from .deadline import Deadline
        return Deadline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
