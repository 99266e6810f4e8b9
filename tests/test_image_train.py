"""Images end to end: the cnn on digits, a folder of PNGs, transfer learning in stages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.datasets import load_digits

import deepfit
from deepfit import cli
from deepfit.config import TrainConfig
from deepfit.errors import SettingsError
from deepfit.modalities.image.arrays import digits_images
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.training.callbacks.unfreeze import GradualUnfreezing
from deepfit.training.optim import create_optimizer
from deepfit.training.trainer import Trainer, TrainingInterrupted

QUIET = {"progress": False, "report": False, "threads": 1}


@pytest.fixture(autouse=True)
def keep_threads():
    """Runs here use one thread (`threads=1`): small convolutions run faster on one, and far
    faster when other processes share the cores. The suite's setting is put back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def digits():
    return digits_images(), load_digits().target


@pytest.fixture(scope="module")
def pretrained(digits, tmp_path_factory):
    """The cnn trained on digits 0-4."""
    X, y = digits
    low = y < 5
    threads = torch.get_num_threads()
    run = deepfit.train(X[low], y=y[low], model="cnn", epochs=8, out=tmp_path_factory.mktemp("p") / "run",
                        **QUIET)
    torch.set_num_threads(threads)
    return run


def few_shot(digits, classes, per_class, seed, tmp_path):
    """`per_class` images of each class to train on, and an .npz of the others to test on."""
    X, y = digits
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.isin(y, classes))
    few = np.concatenate([rng.choice(pool[y[pool] == c], per_class, replace=False) for c in classes])
    rest = np.setdiff1d(pool, few)
    np.savez(tmp_path / f"test{seed}.npz", X=X[rest], y=y[rest])
    return X[few], y[few], str(tmp_path / f"test{seed}.npz")


def test_cnn_reaches_95_percent_on_digits(tmp_path):
    """Measured on seeds 0-4: 0.978-0.996 (seed 0, the one used: 0.989), so 0.95 sits 5 sd below.
    The speed (about 10 s here, one thread) is a benchmark's claim, not this test's: a
    wall-clock bound fails on a loaded machine."""
    run = deepfit.train("digits", model="cnn", epochs=12, out=tmp_path / "run", **QUIET)
    print(f"cnn on digits: accuracy {run.metrics['accuracy']:.4f}")
    assert run.metrics["accuracy"] >= 0.95
    config = json.loads((run.path / "config.json").read_text())
    assert config["data"]["modality"] == "image" and config["data"]["shape"] == [1797, 1, 8, 8]
    assert any("augmentation of the training batches" in d for d in config["decisions"])


def _shapes_folder(root, per_class=40, seed=0):
    """Circles and squares: PNG and JPEG, 12 to 24 pixels, modes L, RGB, RGBA and P, one corrupt."""
    rng = np.random.default_rng(seed)
    for label in ("circle", "square"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            side = int(rng.choice([12, 16, 20, 24]))
            yy, xx = np.mgrid[:side, :side] / side - 0.5
            shape = np.hypot(yy, xx) < 0.3 if label == "circle" else (abs(yy) < 0.3) & (abs(xx) < 0.3)
            pixels = np.clip(shape * 180 + 30 + rng.normal(0, 15, shape.shape), 0, 255).astype(np.uint8)
            mode = ("L", "RGB", "RGBA", "P")[i % 4]
            suffix = ".jpg" if mode in ("L", "RGB") and i % 3 == 0 else ".png"
            Image.fromarray(pixels).convert(mode).save(root / label / f"{label}{i:02d}{suffix}")
    (root / "square" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(60)))
    return root


def test_a_folder_of_pngs_trains_end_to_end_and_names_the_corrupt_file(tmp_path, capsys, keep_logging):
    folder = _shapes_folder(tmp_path / "shapes")
    out = tmp_path / "run"
    code = cli.main(["train", str(folder), "--set", "widths=8,16,32", "--epochs", "20", "--batch-size", "16",
                     "--image-size", "16", "--threads", "1", "--no-report", "--out", str(out), "-q"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == "cnn"  # the default for images
    assert any(w.startswith("skipped 1 unreadable image file: square/corrupt.png") for w in config["warnings"])
    assert config["data"]["shape"] == [80, 3, 16, 16]  # colour among the modes: RGB
    assert json.loads((out / "metrics.json").read_text())["accuracy"] >= 0.8
    capsys.readouterr()
    assert cli.main(["predict", str(out), str(folder / "circle"), "-o", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns[:2]) == ["file", "prediction"] and len(predictions) == 40
    assert (predictions["prediction"] == "circle").mean() >= 0.8
    loaded = deepfit.load(out)
    single = loaded.predict(folder / "circle" / "circle01.png")
    assert list(single) == [predictions["prediction"][1]]


def test_stage_one_leaves_the_backbone_bit_identical(digits, pretrained, tmp_path):
    """--model transfer --weights RUN_DIR: the pretrained architecture, a new 3-class head;
    after the frozen stage every tensor but the head's is the pretrained one, BatchNorm's
    running statistics included."""
    X, y, test = few_shot(digits, [5, 6, 7], 20, 0, tmp_path)
    run = deepfit.train(X, y=y, model="transfer", weights=str(pretrained.path), freeze_epochs=2,
                        epochs=2, test=test, test_size=0.0, out=tmp_path / "run", **QUIET)
    before, after = load_file(pretrained.path / "model.safetensors"), load_file(run.path / "model.safetensors")
    body = [k for k in before if not k.startswith("head.")]
    assert any("running_mean" in k for k in body) and all(torch.equal(before[k], after[k]) for k in body)
    assert after["head.weight"].shape == (3, 256) and not torch.equal(after["head.bias"], torch.zeros(3))
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"]["architecture"] == "cnn" and config["model"]["architecture_settings"]["widths"] == [32, 64, 128]
    rates = {g["name"]: g["lr"] for g in config["model"]["param_groups"]}
    assert list(rates) == ["head", "neck", "block3", "block2", "block1"]
    assert rates["head"] == pytest.approx(1e-3) and rates["block1"] == pytest.approx(1e-4)
    history = pd.read_csv(run.path / "history.csv")
    assert list(history["stage"]) == [1, 1] and list(history["trainable_groups"]) == [1, 1]
    assert history["lr_block1"].iloc[0] == pytest.approx(1e-4)
    assert list(history.columns[-3:]) == ["lr", "train_seconds", "epoch_seconds"]
    reloaded = deepfit.load(run.path)
    assert reloaded.architecture["name"] == "cnn" and set(reloaded.predict(X[:5])) <= {5, 6, 7}
    with pytest.raises(SettingsError, match="gives the architecture .* use --model transfer"):
        deepfit.train(X, y=y, model="cnn", weights=str(pretrained.path), out=tmp_path / "no", **QUIET)


def test_the_optimizer_carries_discriminative_rates_for_every_parameter():
    model = create("cnn", InputSpec(1, 1, modality="image", shape=(1, 8, 8)), OutputSpec("classification", 4))
    optimizer = create_optimizer(model, TrainConfig(weights="x", lr=2e-3, backbone_lr_mult=0.1), torch.device("cpu"))
    by_name = {}
    for group in optimizer.param_groups:
        by_name.setdefault(group["name"], group["lr"])
        assert group["weight_decay"] == (0.01 if group["params"][0].ndim >= 2 else 0.0)
    assert list(by_name) == ["head", "neck", "block3", "block2", "block1"]
    lrs = np.array(list(by_name.values()))
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 0.1 ** 0.25)  # geometric, head 2e-3 → block1 2e-4
    assert lrs[0] == pytest.approx(2e-3) and lrs[-1] == pytest.approx(2e-4)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.parameters()}
    plain = create_optimizer(model, TrainConfig(), torch.device("cpu"))
    assert {g["lr"] for g in plain.param_groups} == {1e-3}  # no --weights: one rate


def test_gradual_unfreezing_schedule_keeps_frozen_batchnorm_in_eval():
    model = create("cnn", InputSpec(1, 1, modality="image", shape=(1, 8, 8)), OutputSpec("classification", 4))
    trainer = Trainer(model, torch.nn.CrossEntropyLoss(),
                      create_optimizer(model, TrainConfig(weights="x"), torch.device("cpu")),
                      epochs=10, device=torch.device("cpu"))
    callback = GradualUnfreezing(model, freeze_epochs=2, unfreeze_every=2)
    callback.on_fit_start(trainer, trainer.state)
    training = []
    for epoch in range(10):
        trainer.state.epoch = epoch
        model.train()
        callback.on_epoch_start(trainer, trainer.state)
        training.append([name for name, params in model.param_groups() if params[0].requires_grad])
        assert model.blocks[0][1].training == model.blocks[0][1].weight.requires_grad
        assert model.neck[1].training == model.neck[1].weight.requires_grad
    assert training[0] == training[1] == ["head"]
    assert training[2] == training[3] == ["neck", "head"]
    assert training[4] == ["block3", "neck", "head"]
    assert training[8] == training[9] == ["block1", "block2", "block3", "neck", "head"]
    callback.on_fit_end(trainer, trainer.state)
    assert all(p.requires_grad for p in model.parameters())


def test_augmentation_touches_training_batches_only():
    seen = []

    def augment(xb):
        seen.append(len(xb))
        return xb.flip(-1)

    model = create("cnn", InputSpec(1, 1, modality="image", shape=(1, 8, 8)), OutputSpec("classification", 2),
                   widths=(4, 4, 4), hidden=8)
    from deepfit.data.batches import make_batches

    X, y = torch.randn(40, 1, 8, 8), torch.arange(40) % 2
    batches = [make_batches(X, y, 16, loader="memory", shuffle=s, seed=0, device=torch.device("cpu")) for s in (True, False)]
    trainer = Trainer(model, torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                      epochs=2, device=torch.device("cpu"), augment=augment)
    trainer.fit(*batches)
    assert seen == [16, 16, 8] * 2  # the training batches of both epochs, and nothing else
    trainer.predict(batches[1])
    assert len(seen) == 6


def test_resumed_fine_tuning_with_augmentation_equals_uninterrupted(digits, pretrained, tmp_path, monkeypatch):
    X, y, test = few_shot(digits, [5, 6, 7, 8], 12, 1, tmp_path)
    settings = {"model": "transfer", "weights": str(pretrained.path), "freeze_epochs": 1, "epochs": 4,
                "batch_size": 8, "augment": "strong", "flip": True, "patience": 100, "test": test,
                "test_size": 0.0, **QUIET}
    reference = deepfit.train(X, y=y, out=tmp_path / "a", **settings)
    original = Trainer._step

    def step_then_stop(self, loss):
        original(self, loss)
        if self.state.step == 7:  # mid-way through epoch 2, the first with a trainable body group
            self.stop_requested = True

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", step_then_stop)
        with pytest.raises(TrainingInterrupted):
            deepfit.train(X, y=y, out=tmp_path / "b", **settings)
    resumed = deepfit.train(X, y=y, resume=tmp_path / "b", progress=False)
    a, b = load_file(reference.path / "model.safetensors"), load_file(resumed.path / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in reference.history]


@pytest.fixture(scope="module")
def pretrained_all(digits, tmp_path_factory):
    """The cnn trained on all ten digits, on the first 1,000 images only."""
    X, y = digits
    threads = torch.get_num_threads()
    run = deepfit.train(X[:1000], y=y[:1000], model="cnn", epochs=8, out=tmp_path_factory.mktemp("p10") / "run",
                        **QUIET)
    torch.set_num_threads(threads)
    return run


@pytest.mark.slow
def test_transfer_beats_training_from_scratch_on_few_images(digits, pretrained_all, tmp_path):
    """A pair where the source's features clearly help: the cnn trained on ten-class digits (the
    first 1,000 images), fine-tuned with deepfit's default stages to tell even from odd digits
    from 50 other images (5 of each digit), against the same cnn trained from scratch on those
    50; both tested on the ~750 images left. Measured by benchmarks/transfer.py (8 seeds, 2 CPU
    cores): transfer 0.952-0.988, scratch 0.893-0.925, margin +0.044 to +0.088 (mean 0.066, sd
    0.016), so the bounds below sit 5-6 standard deviations away. With 3 images of each digit
    the margin is larger on average but erratic (sd 0.14, one seed of 8 negative); the
    session-2 pair (digits 0-4 to 5-9, 20 images each) is even (mean -0.013): both are in
    benchmarks/RESULTS.md, not in a test."""
    X, y = digits
    parity = np.where(y % 2 == 0, "even", "odd")
    common = {"epochs": 20, "batch_size": 16, "augment": "none", "test_size": 0.0, **QUIET}
    tuned_scores, margins = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        pool = np.arange(1000, len(y))
        few = np.concatenate([rng.choice(pool[y[pool] == c], 5, replace=False) for c in range(10)])
        rest = np.setdiff1d(pool, few)
        np.savez(tmp_path / f"test{seed}.npz", X=X[rest], y=parity[rest])
        test = str(tmp_path / f"test{seed}.npz")
        tuned = deepfit.train(X[few], y=parity[few], test=test, seed=seed, model="transfer",
                              weights=str(pretrained_all.path), out=tmp_path / f"t{seed}", **common)
        scratch = deepfit.train(X[few], y=parity[few], test=test, seed=seed, model="cnn",
                                out=tmp_path / f"s{seed}", **common)
        tuned_scores.append(tuned.metrics["accuracy"])
        margins.append(tuned.metrics["accuracy"] - scratch.metrics["accuracy"])
        print(f"seed {seed}: transfer {tuned.metrics['accuracy']:.3f}, scratch {scratch.metrics['accuracy']:.3f}")
    assert min(tuned_scores) >= 0.9, tuned_scores
    assert np.mean(margins) >= 0.02 and sum(m > 0 for m in margins) >= 4, margins
