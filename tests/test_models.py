"""The guide's unit tests for models, parametrised over the registry."""

from __future__ import annotations

import pytest
import torch

from deepfit.errors import SettingsError
from deepfit.models import InputSpec, OutputSpec, available, create, modalities

# Input specs by modality: every model is tested with the specs of the data it takes.
SPECS = {
    "tabular": {
        "plain": InputSpec(n_features=12, n_dense=12),
        "embedded": InputSpec(n_features=14, n_dense=12, cardinalities=(5, 40)),
    },
    "sequence": {
        "univariate": InputSpec(n_features=1, n_dense=1, modality="sequence", shape=(16, 1)),
        "multichannel": InputSpec(n_features=3, n_dense=3, modality="sequence", shape=(12, 3)),
    },
    "image": {
        "gray": InputSpec(n_features=1, n_dense=1, modality="image", shape=(1, 16, 16)),
        "rgb": InputSpec(n_features=3, n_dense=3, modality="image", shape=(3, 16, 16)),
    },
    "text": {  # token ids (0 = padding); "fused": 2 numbers, 1 category, then 2 text columns
        "one_text": InputSpec(n_features=16, n_dense=0, modality="text", shape=(1, 16), vocab_size=50),
        "fused": InputSpec(n_features=19, n_dense=2, cardinalities=(5,), modality="text",
                           shape=(2, 8), vocab_size=50),
    },
}
OVERFIT_MAX_PARAMETERS = 2_000_000


pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(name: str, spec_name: str) -> InputSpec:
    return SPECS[modalities(name)[0]][spec_name]


def _cases() -> list[tuple[str, str]]:
    """(model, spec) pairs: each model with each spec of its (first) modality."""
    return [(name, spec_name) for name in available("classification") for spec_name in SPECS[modalities(name)[0]]]


def _batch(spec: InputSpec, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if spec.modality == "text":  # the tabular block, then texts of 1 … L tokens, padded with 0
        n_text, length = spec.shape
        n_tab = spec.n_features - n_text * length
        ids = torch.randint(1, spec.vocab_size, (n, n_text, length), generator=g).float()
        real = torch.randint(1, length + 1, (n, n_text, 1), generator=g)
        ids = torch.where(torch.arange(length) < real, ids, torch.zeros(()))
        tab = torch.randn(n, n_tab, generator=g)
        for i, card in enumerate(spec.cardinalities):
            tab[:, spec.n_dense + i] = torch.randint(0, card, (n,), generator=g).float()
        return torch.cat([tab, ids.reshape(n, -1)], dim=1)
    if spec.modality != "tabular":
        return torch.randn(n, *spec.shape, generator=g)
    x = torch.randn(n, spec.n_features, generator=g)
    for i, card in enumerate(spec.cardinalities):
        x[:, spec.n_dense + i] = torch.randint(0, card, (n,), generator=g).float()
    return x


@pytest.mark.parametrize("name,spec_name", _cases())
@pytest.mark.parametrize("task,n_out", [("classification", 3), ("regression", 1)])
def test_output_shape(name, spec_name, task, n_out):
    spec = _spec(name, spec_name)
    model = create(name, spec, OutputSpec(task, n_out))
    assert model(_batch(spec, 8)).shape == (8, n_out)
    assert model.forward_features(_batch(spec, 8)).shape == (8, model.num_features)


@pytest.mark.parametrize("name,spec_name", _cases())
def test_gradient_reaches_every_parameter(name, spec_name):
    torch.manual_seed(0)
    spec = _spec(name, spec_name)
    model = create(name, spec, OutputSpec("classification", 3))
    loss = torch.nn.functional.cross_entropy(model(_batch(spec, 32)), torch.arange(32) % 3)
    loss.backward()
    for pname, param in model.named_parameters():
        if pname.startswith("input.embeddings"):
            # an embedding row gets a gradient only for the codes present in the batch
            assert param.grad is not None and param.grad.abs().sum() > 0, pname
            continue
        assert param.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient in {pname}"
        assert param.grad.abs().sum() > 0, f"zero gradient in {pname}"


@pytest.mark.parametrize("name", [n for n in available("classification") if "image" not in modalities(n)])
def test_overfits_a_small_batch(name):
    """Image models overfit their batch in test_image_models.py (ResNets need fewer, larger steps)."""
    torch.manual_seed(0)
    spec = list(SPECS[modalities(name)[0]].values())[-1]  # embedded / multichannel
    x, y = _batch(spec, 16, seed=1), torch.arange(16) % 4
    model = create(name, spec, OutputSpec("classification", 4), dropout=0.0)
    assert sum(p.numel() for p in model.parameters()) <= OVERFIT_MAX_PARAMETERS
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.9


@pytest.mark.parametrize("name", available("classification"))
def test_reset_classifier(name):
    spec = next(iter(SPECS[modalities(name)[0]].values()))
    model = create(name, spec, OutputSpec("classification", 3))
    model.reset_classifier(5)
    assert model(_batch(spec, 4)).shape == (4, 5)


def test_unknown_setting_lists_the_valid_ones():
    with pytest.raises(SettingsError, match=r"unknown setting widht .*dropout, hidden"):
        create("mlp", SPECS["tabular"]["plain"], OutputSpec("regression", 1), widht=3)


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(SettingsError, match="unknown model 'transformerz'.*mlp"):
        create("transformerz", SPECS["tabular"]["plain"], OutputSpec("regression", 1))


def test_settings_given_as_text_are_coerced():
    model = create("mlp", SPECS["tabular"]["plain"], OutputSpec("regression", 1), hidden="16,8", dropout="0.1")
    widths = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [16, 8, 1]
    with pytest.raises(SettingsError, match="hidden"):
        create("mlp", SPECS["tabular"]["plain"], OutputSpec("regression", 1), hidden="a,b")


def test_mlp_is_the_guides_block():
    model = create("mlp", SPECS["tabular"]["plain"], OutputSpec("classification", 2), hidden=(8,), dropout=0.3)
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
