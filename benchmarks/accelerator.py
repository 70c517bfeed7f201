"""Fine-tuning throughput on this machine's accelerator: kagglekit's defaults against plain Keras `fit` in float32.

    python benchmarks/accelerator.py                                  # ResNet50, EfficientNetV2-S, ViT-B/16 at 224
    python benchmarks/accelerator.py --models resnet50 --size 64 --batch 4 --steps 3   # a quick check on a CPU
    python benchmarks/accelerator.py --json out.json                  # also write the rows as JSON

For each model, the same random uint8 images (``--batch`` x ``--steps`` of them, 10 classes) are
trained for one epoch twice, every layer trainable:

* **keras fp32**: ``keras.applications`` (or KerasHub's ViT) + a dense head, float32, ``Adam``,
  ``model.fit(x, y, batch_size)`` on one device: what a plain Keras notebook does.
* **kagglekit**: ``kagglekit.learner.fine_tune`` with its defaults (mixed precision "auto", data
  parallel over every accelerator "auto", its input pipeline and augmentation; ``weights=None`` so
  there is no frozen stage: the unfrozen stage is what is timed) when the backbone is in kagglekit's
  registry; otherwise the same Keras model with kagglekit's device choices (its precision policy, its
  distribution scope, its ``jit_compile`` setting), marked "(device settings only)".

Images/s counts the batches after the first ``--warmup`` (compilation) ones, through a callback in
both runs. The accelerator's busy share is the mean of ``nvidia-smi --query-gpu=utilization.gpu``
sampled every 200 ms over the timed batches (GPUs only; "n/a" elsewhere). The goal (issue 19) is
kagglekit at least 2x the float32 baseline and at least 90% busy.

ViT-B/16 comes from the KerasHub preset ``--vit-preset`` when it can be loaded (cached or online);
otherwise from ``keras_hub.models.ViTBackbone`` with ViT-B/16's configuration and random weights
(the same computation; said in the output). Figures depend on the machine: run it where the
accelerator is, and quote only what it printed there.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np

MODELS = {"resnet50": ("ResNet50", ["resnet50"]),
          "efficientnetv2s": ("EfficientNetV2S", ["efficientnetv2s", "efficientnetv2_s", "efficientnet_v2_s"]),
          "vit_b16": (None, ["vit_b16", "hub:vit_base_patch16_224_imagenet"])}


class Timer:
    """A Keras callback: wall time of the training batches after the first `warmup`."""

    def __init__(self, warmup: int):
        import keras

        outer = self

        class _CB(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if outer.seen == warmup:
                    outer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                outer.seen += 1
                if outer.seen > warmup:
                    outer.end, outer.timed = time.perf_counter(), outer.seen - warmup

        self.warmup, self.seen, self.timed, self.start, self.end = warmup, 0, 0, None, None
        self.callback = _CB()

    def images_per_s(self, batch: int) -> float | None:
        """Return images/s over the timed batches (None when none was timed)."""
        return self.timed * batch / (self.end - self.start) if self.timed and self.end > self.start else None


class Busy:
    """nvidia-smi utilisation samples (percent) with their times, in a background thread."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self.exe = shutil.which("nvidia-smi")
        self._thread = threading.Thread(target=self._run, daemon=True) if self.exe else None

    def _run(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run([self.exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.samples.append((time.perf_counter(), float(np.mean([float(v) for v in out]))))
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            self._stop.wait(0.2)

    def __enter__(self):
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def share(self, start: float | None, end: float | None) -> float | None:
        """Return the mean utilisation (0..1) between `start` and `end`, None without samples."""
        inside = [u for t, u in self.samples if start is not None and end is not None and start <= t <= end]
        return float(np.mean(inside)) / 100 if inside else None


def keras_model(model: str, size: int, classes: int, vit_preset: str):
    """Return (a Keras classifier with every layer trainable, a note on where its backbone came from)."""
    import keras

    if model == "vit_b16":
        import keras_hub

        try:
            backbone, note = keras_hub.models.Backbone.from_preset(vit_preset), f"KerasHub preset {vit_preset}"
        except Exception as exc:  # noqa: BLE001 - offline and not cached
            backbone = keras_hub.models.ViTBackbone(image_shape=(size, size, 3), patch_size=16, num_layers=12, num_heads=12,
                                                    hidden_dim=768, mlp_dim=3072)
            note = f"ViT-B/16 configuration, random weights (preset {vit_preset} not loadable: {type(exc).__name__})"
        inputs = keras.Input((size, size, 3))
        features = backbone(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs))[:, 0]
    else:
        app = getattr(keras.applications, MODELS[model][0])
        backbone = app(include_top=False, weights=None, input_shape=(size, size, 3), pooling="avg")
        inputs, note = keras.Input((size, size, 3)), f"keras.applications.{MODELS[model][0]}, random weights"
        features = backbone(inputs)
    outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32")(features)
    return keras.Model(inputs, outputs), note


def run_keras(model: str, x, y, batch: int, warmup: int, vit_preset: str, kagglekit_devices: bool) -> dict:
    """Return the row of one plain-Keras run (float32 on one device, or with kagglekit's device choices)."""
    import contextlib

    import keras

    scope, policy, jit = contextlib.nullcontext, "float32", "auto"
    if kagglekit_devices:
        from kagglekit.learner.devices import _Strategy, jit_compile_setting, precision_policy

        strategy = _Strategy("auto")
        scope, policy, jit = strategy.scope, precision_policy("auto") or "float32", jit_compile_setting(strategy.replicas)
    keras.mixed_precision.set_global_policy(policy)
    try:
        with scope():
            net, note = keras_model(model, x.shape[1], 10, vit_preset)
            net.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy", jit_compile=jit)
        timer = Timer(warmup)
        with Busy() as busy:
            net.fit(x.astype("float32"), y, batch_size=batch, epochs=1, verbose=0, callbacks=[timer.callback])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"images_per_s": timer.images_per_s(batch), "busy": busy.share(timer.start, timer.end), "policy": policy,
            "source": note + (" (device settings only)" if kagglekit_devices else "")}


def run_kagglekit(name: str, x, y, batch: int, warmup: int) -> dict:
    """Return the row of one `fine_tune` run with kagglekit's defaults (unfrozen stage only: weights=None)."""
    from kagglekit import learner as L

    timer = Timer(warmup)
    with Busy() as busy, tempfile.TemporaryDirectory() as tmp:
        learner = L.fine_tune((x, y), backbone=name, weights=None, sizes=[x.shape[1]], epochs=1, valid=None,
                              batch_size=batch, verbose=0, workdir=tmp, callbacks=[timer.callback], resume=False,
                              restore_best=False)
    return {"images_per_s": timer.images_per_s(batch),
            "busy": busy.share(timer.start, timer.end), "policy": learner.settings["policy"] or "float32",
            "source": f"kagglekit fine_tune({name!r}), distribution {learner.settings['distribution']}"}


def _registered(candidates: list[str]) -> str | None:
    from kagglekit import backbones

    have = set(backbones.names())
    return next((c for c in candidates if c in have), None)


def _fmt(v: float | None, pct: bool = False) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%" if pct else f"{v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet50,efficientnetv2s,vit_b16", help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=64, help="global batch of both runs")
    ap.add_argument("--steps", type=int, default=30, help="training batches per run (the first --warmup are not timed)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed first batches (default: a third of --steps, at least 1)")
    ap.add_argument("--vit-preset", default="vit_base_patch16_224_imagenet")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    import keras

    from kagglekit.hardware import Hardware

    warmup = args.warmup if args.warmup is not None else max(1, args.steps // 3)
    if args.steps <= warmup:
        ap.error(f"--steps {args.steps} leaves nothing to time after {warmup} warm-up batches")
    hw = Hardware.probe(keras.backend.backend())
    print(f"backend {keras.backend.backend()}; {hw.describe()}")
    rng = np.random.default_rng(0)
    n = args.batch * args.steps
    x = rng.integers(0, 256, (n, args.size, args.size, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype("int32")
    rows = []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        if model not in MODELS:
            ap.error(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        base = run_keras(model, x, y, args.batch, warmup, args.vit_preset, kagglekit_devices=False)
        name = _registered(MODELS[model][1])
        kk = run_kagglekit(name, x, y, args.batch, warmup) if name else \
            run_keras(model, x, y, args.batch, warmup, args.vit_preset, kagglekit_devices=True)
        speedup = kk["images_per_s"] / base["images_per_s"] if kk["images_per_s"] and base["images_per_s"] else None
        rows.append({"model": model, "size": args.size, "batch": args.batch, "timed_steps": args.steps - warmup,
                     "keras_fp32": base, "kagglekit": kk, "speedup": speedup, "hardware": hw.describe()})
        print(f"{model:16s} keras fp32 {_fmt(base['images_per_s'])} img/s (busy {_fmt(base['busy'], True)})  |  "
              f"kagglekit {_fmt(kk['images_per_s'])} img/s (busy {_fmt(kk['busy'], True)}, {kk['policy']})  |  "
              f"x{_fmt(speedup)}")
        print(f"{'':16s} baseline: {base['source']}; kagglekit: {kk['source']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
