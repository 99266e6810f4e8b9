"""The guide's model tests for every image model of the registry (and a `transfer:<name>`), the
uniform interface, and loading pretrained weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import deepfit
from deepfit.core.notes import Notes
from deepfit.errors import SettingsError, SourceNotFoundError
from deepfit.models import InputSpec, OutputSpec, available, create, modalities
from deepfit.models.transfer import build_model, load_matching
from deepfit.models.vision import layer_groups

IMAGE_MODELS = [n for n in available("classification") if modalities(n) == ("image",)] + ["transfer:resnet18"]
HEAVY = {"resnet34", "resnet50"}
GRAY = InputSpec(1, 1, modality="image", shape=(1, 8, 8))
RGB = InputSpec(3, 3, modality="image", shape=(3, 16, 16))


pytestmark = pytest.mark.usefixtures("one_thread")


def _marked(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


def _images(spec: InputSpec, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *spec.shape, generator=torch.Generator().manual_seed(seed))


def test_the_registry_has_the_image_models():
    assert {"cnn", "resnet18", "resnet34", "resnet50"} <= set(IMAGE_MODELS)


@pytest.mark.parametrize("name", _marked(IMAGE_MODELS))
@pytest.mark.parametrize("spec", [GRAY, RGB], ids=["gray8", "rgb16"])
def test_shapes_and_the_uniform_interface(name, spec):
    model = create(name, spec, OutputSpec("classification", 3))
    x = _images(spec, 4)
    features = model.forward_features(x)
    assert features.shape == (4, model.num_features)
    assert model.forward_head(features).shape == model(x).shape == (4, 3)
    groups = model.param_groups()
    assert groups[-1][0] == "head" and len(groups) >= 3
    grouped = [id(p) for _, params in groups for p in params]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each exactly once
    model.reset_head(7)
    assert model(x).shape == (4, 7)
    assert model.param_groups()[-1][1][0] is model.head.weight


@pytest.mark.parametrize("name", _marked(IMAGE_MODELS))
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create(name, RGB, OutputSpec("classification", 3))
    loss = torch.nn.functional.cross_entropy(model(_images(RGB, 16)), torch.arange(16) % 3)
    loss.backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient in {pname}"
        assert param.grad.abs().sum() > 0, f"zero gradient in {pname}"


@pytest.mark.parametrize("name", _marked(IMAGE_MODELS))
def test_overfits_a_small_batch(name):
    """The training loss on one batch goes to nearly zero (checked in training mode: BatchNorm's
    running statistics would need many more steps to follow)."""
    torch.manual_seed(0)
    x, y = _images(GRAY, 8, seed=1), torch.arange(8) % 4
    model = create(name, GRAY, OutputSpec("classification", 4), dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        losses.append(loss.item())
        if losses[-1] < 0.05:
            break
        loss.backward()
        opt.step()
    assert losses[-1] < 0.05 < losses[0], losses
    assert (logits.argmax(1) == y).all()


def test_cnn_is_the_guides_network_and_fits_any_image_size():
    model = create("cnn", GRAY, OutputSpec("classification", 10))
    kinds = [type(m).__name__ for m in model.blocks[0]]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Dropout2d"]
    assert [type(m).__name__ for m in model.neck] == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert type(model.blocks[2][6]).__name__ == "Identity"  # 8 → 4 → 2: no pooling below 4 px
    big = create("cnn", InputSpec(1, 1, modality="image", shape=(1, 40, 24)), OutputSpec("classification", 10))
    assert {k: v.shape for k, v in big.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert big(torch.randn(2, 1, 40, 24)).shape == (2, 10)


def test_resnet_stem_follows_the_image_size_and_is_pinned():
    small = create("resnet18", RGB, OutputSpec("classification", 2))
    large = create("resnet18", InputSpec(3, 3, modality="image", shape=(3, 64, 64)), OutputSpec("classification", 2))
    assert small.body.conv1.kernel_size == (3, 3) and isinstance(small.body.maxpool, torch.nn.Identity)
    assert large.body.conv1.kernel_size == (7, 7)
    assert small.pinned == {"stem": "small"} and large.pinned == {"stem": "imagenet"}
    gray = create("resnet18", GRAY, OutputSpec("classification", 2))
    assert gray.body.conv1.in_channels == 1


def test_layer_groups_cut_a_torchvision_model_from_input_to_top():
    model = create("transfer:mobilenet_v3_small", RGB, OutputSpec("classification", 2))
    names = [name for name, _ in layer_groups(model.body)]
    assert len(names) >= 4 and names[0].startswith("features.0")
    assert sum(len(p) for _, p in layer_groups(model.body)) == len(list(model.body.parameters()))


def test_transfer_names_are_checked():
    with pytest.raises(SettingsError, match="not a torchvision classification model"):
        create("transfer:resnet19", RGB, OutputSpec("classification", 2))
    with pytest.raises(SettingsError, match="--weights RUN_DIR"):
        create("transfer", RGB, OutputSpec("classification", 2))
    with pytest.raises(SettingsError, match="unknown model 'cnnn'.*transfer:<name>"):
        create("cnnn", RGB, OutputSpec("classification", 2))


def test_transfer_without_weights_is_refused_before_any_data_are_read(tmp_path, monkeypatch):
    """transfer:<name> means fine-tuning a pretrained network: without --weights it is a named
    error naming the three kinds of weights (and --weights none), raised before the source is
    even looked at (a source that does not exist would otherwise be the error)."""
    from deepfit.modalities import load

    monkeypatch.setattr(load, "read_source", lambda *a, **k: pytest.fail("data were read"))
    with pytest.raises(SettingsError, match=r"transfer:resnet18 fine-tunes a pretrained network, "
                       r"but no --weights were given: --weights DEFAULT .*--weights FILE.*"
                       r"--weights RUN_DIR.*--weights none trains it from random weights"):
        deepfit.train("no-such-data", model="transfer:resnet18", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(SettingsError, match="disagree"):
        deepfit.train("no-such-data", model="transfer:resnet18", weights="DEFAULT",
                      from_scratch=True, out=tmp_path / "r")


def test_weights_none_trains_transfer_from_random_weights_and_says_so(tmp_path):
    X = np.random.default_rng(0).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8)
    y = np.arange(40) % 2
    run = deepfit.train(X, y, model="transfer:resnet18", weights="none", epochs=1, threads=1,
                        report=False, out=tmp_path / "r")
    assert run.config["train"]["from_scratch"] is True and run.config["train"]["weights"] is None
    assert any("starts from random weights, as asked (--weights none)" in d
               for d in run.notes.decisions)


def test_missing_torchvision_weights_are_a_named_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(SourceNotFoundError, match=r"DEFAULT weights for resnet18 .*not in the local torch cache"):
        build_model("transfer:resnet18", {"dropout": 0.0}, RGB, OutputSpec("classification", 2),
                    "DEFAULT", Notes())
    with pytest.raises(SettingsError, match="fit a transfer:<name> model"):
        build_model("cnn", {}, RGB, OutputSpec("classification", 2), "DEFAULT", Notes())
    with pytest.raises(SourceNotFoundError, match="deepfit does not download"):  # before any data
        deepfit.train("no-such-data", model="transfer:resnet18", weights="DEFAULT", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_torchvision_weights_from_the_cache_load_with_a_new_head(tmp_path, monkeypatch):
    """A stand-in for torchvision's file, at the path torchvision's download would give it."""
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    weights = torchvision.models.get_model_weights("resnet18").DEFAULT
    reference = torchvision.models.resnet18(num_classes=1000)
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / weights.url.rsplit("/", 1)[1])
    model, name, _ = build_model("transfer:resnet18", {"dropout": 0.0}, RGB,
                                 OutputSpec("classification", 4), "DEFAULT", Notes())
    assert name == "transfer:resnet18" and model.head.out_features == 4
    assert torch.equal(model.body.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(model.body.bn1.running_var, reference.bn1.running_var)


def test_weights_files_load_all_but_the_head_and_mismatches_are_named(tmp_path):
    torch.manual_seed(0)
    source = create("cnn", GRAY, OutputSpec("classification", 10))
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    model, _, _ = build_model("cnn", {}, GRAY, OutputSpec("classification", 3),
                              str(tmp_path / "w.safetensors"), Notes())
    assert torch.equal(model.blocks[1][0].weight, source.blocks[1][0].weight)
    assert model.head.out_features == 3
    other = create("cnn", GRAY, OutputSpec("classification", 10), widths=(8, 16, 32))
    with pytest.raises(SettingsError, match=r"do not fit the cnn model \(other shapes: blocks.0.0.weight"):
        load_matching(other, source.state_dict(), "w.safetensors", "cnn")
