"""Text models: padding never changes a prediction (textcnn, bigru, transformer and a Hugging
Face encoder), and `--model transfer:PATH` fine-tunes a tiny randomly-initialised BERT-style
checkpoint written here (no download) in stages, saves, and reloads without the folder."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.core.notes import Notes
from deepfit.errors import SettingsError, SourceNotFoundError
from deepfit.models import InputSpec, OutputSpec, create
from deepfit.models.transfer import build_model, check_weights

pytest.importorskip("transformers", reason="the text extra (transformers) is not installed")

WORDS = ["the", "a", "movie", "film", "was", "is", "not", "very", "really", "quite", "plot",
         "acting", "story", "music", "ending", "great", "awful", "good", "bad"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
N_TAB = 2  # a tabular block of two numbers before the token ids (late fusion)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny BERT (hidden 32, 2 layers, 2 heads), random weights, with its own WordPiece
    tokenizer from a vocab.txt written here: a local Hugging Face checkpoint folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(SPECIALS) + len(WORDS), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    BertTokenizerFast(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def _spec(length: int, vocab: int) -> InputSpec:
    return InputSpec(N_TAB + length, N_TAB, modality="text", shape=(1, length), vocab_size=vocab)


def _rows(n: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    """[n, N_TAB + length]: numbers, then ids 1 … vocab - 1 of texts of 1 … 10 tokens, padded."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, N_TAB + length)
    x[:, :N_TAB] = torch.randn(n, N_TAB, generator=g)
    for i in range(n):
        k = int(torch.randint(1, 11, (1,), generator=g))
        x[i, N_TAB : N_TAB + k] = torch.randint(1, vocab, (k,), generator=g).float()
    return x


def _pad(x: torch.Tensor, length: int) -> torch.Tensor:
    return torch.cat([x, torch.zeros(len(x), N_TAB + length - x.shape[1])], dim=1)


@pytest.mark.parametrize("name", ["textcnn", "bigru", "transformer", "hf"])
def test_padding_never_changes_a_prediction(name, checkpoint):
    """The same texts with 12 or 40 slots (the same weights), alone or in batches of another
    composition and order, give the same outputs to 1e-5."""
    vocab = len(SPECIALS) + len(WORDS) + 1  # ids + 1, 0 = padding
    model_name = "transfer:" + str(checkpoint) if name == "hf" else name
    settings = {"dropout": 0.0}
    out = OutputSpec("classification", 3)
    torch.manual_seed(0)
    short = create(model_name, _spec(12, vocab), out, **settings).eval()
    long = create(model_name, _spec(40, vocab), out, **settings).eval()
    long.load_state_dict(short.state_dict())
    x = _rows(8, 12, vocab, seed=1)
    others = _rows(5, 12, vocab, seed=2)
    with torch.no_grad():
        reference = short(x)
        padded = long(_pad(x, 40))
        alone = torch.cat([short(x[i : i + 1]) for i in range(len(x))])
        mixed = short(torch.cat([others, x.flip(0)]))[len(others):].flip(0)
    assert torch.isfinite(reference).all()
    for got in (padded, alone, mixed):
        torch.testing.assert_close(got, reference, rtol=0, atol=1e-5)
    assert (reference[0] - reference[1]).abs().max() > 1e-4  # the texts do change the output


def test_the_padding_check_catches_attention_to_padding(checkpoint):
    """Planted: the same encoder with its attention mask dropped (padding attended to) gives
    other outputs once the texts are padded further, as the check above would say."""
    vocab = len(SPECIALS) + len(WORDS) + 1
    out = OutputSpec("classification", 3)
    name = "transfer:" + str(checkpoint)
    short = create(name, _spec(12, vocab), out, dropout=0.0).eval()
    long = create(name, _spec(40, vocab), out, dropout=0.0).eval()
    long.load_state_dict(short.state_dict())
    forward = long.encoder.forward
    long.encoder.forward = lambda input_ids, attention_mask: forward(
        input_ids=input_ids, attention_mask=torch.zeros_like(attention_mask))  # 0: attend
    x = _rows(8, 12, vocab, seed=1)
    with torch.no_grad():
        assert (long(_pad(x, 40)) - short(x)).abs().max() > 1e-3


def test_checkpoint_weights_are_loaded_unless_from_scratch(checkpoint):
    from transformers import AutoModel

    spec, out = _spec(16, len(SPECIALS) + len(WORDS) + 1), OutputSpec("classification", 2)
    name = "transfer:" + str(checkpoint)
    model, _, settings = build_model(name, {}, spec, out, None, Notes())
    assert json.loads(settings["config"])["hidden_size"] == 32  # stored, so that the run rebuilds without it
    reference = AutoModel.from_pretrained(checkpoint, local_files_only=True).state_dict()
    for key, value in model.encoder.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=0)
    assert model.pretrained_from == str(checkpoint)
    assert [g for g, _ in model.param_groups()] == ["embeddings", "layer.0", "layer.1", "head"]
    scratch = build_model(name, {}, spec, out, None, Notes(), from_scratch=True)[0]
    key = "embeddings.word_embeddings.weight"
    assert not torch.equal(scratch.encoder.state_dict()[key], reference[key])
    assert not hasattr(scratch, "pretrained_from")


def _corpus(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(WORDS[:-4]) for _ in range(rng.randint(4, 9))]
        words.insert(rng.randint(0, len(words)), "great" if label else "awful")
        rows.append({"review": " ".join(words), "stars": rng.random() * 5,  # a number beside the text (late fusion)
                     "label": ["neg", "pos"][label]})
    return pd.DataFrame(rows)


def test_transfer_folder_fine_tunes_in_stages_saves_and_reloads(checkpoint, tmp_path):
    folder = tmp_path / "my-bert"
    shutil.copytree(checkpoint, folder)
    frame = _corpus(160, seed=0)
    csv = tmp_path / "reviews.csv"
    frame.to_csv(csv, index=False)
    run = deepfit.train(str(csv), target="label", model="transfer:" + str(folder), epochs=3,
                        freeze_epochs=1, lr=3e-3, out=tmp_path / "run", report=False,
                        progress=False)
    # the checkpoint's own tokenizer, its post-processor's [CLS] … [SEP] around each text
    pre = run.predictor.preprocessor
    vocab = SPECIALS + WORDS
    ids = pre.transform(frame.drop(columns="label").head(1))[0, -pre.length:]
    real = ids[ids > 0].astype(int) - 1
    assert vocab[real[0]] == "[CLS]" and vocab[real[-1]] == "[SEP]"
    assert [vocab[i] for i in real[1:-1]] == frame.review[0].split()
    # staged unfreezing: the head alone, then one layer group more per epoch from the top
    assert [h["stage"] for h in run.history] == [1, 2, 2]
    assert [h["trainable_groups"] for h in run.history] == [1, 2, 3]
    record = json.loads((run.path / "config.json").read_text())["model"]
    assert [g["name"] for g in record["param_groups"]] == ["head", "layer.1", "layer.0", "embeddings"]
    assert record["param_groups"][-1]["lr"] == pytest.approx(3e-3 * 0.1)
    assert any("fine-tuned in stages" in d for d in run.notes.decisions)
    # reloads without the checkpoint folder: the config is in the settings, the weights saved
    shutil.rmtree(folder)
    X = frame.drop(columns="label")
    loaded = deepfit.load(run.path)
    np.testing.assert_allclose(loaded.predict_proba(X), run.predict_proba(X), rtol=0, atol=1e-6)
    assert list(loaded.predict(X)) == list(run.predict(X))


def test_settings_errors_for_a_folder_that_is_no_checkpoint(checkpoint, tmp_path):
    empty = tmp_path / "not-a-checkpoint"
    empty.mkdir()
    (empty / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    csv = tmp_path / "reviews.csv"
    _corpus(40, seed=1).to_csv(csv, index=False)
    with pytest.raises(SettingsError, match="no config.json"):
        deepfit.train(str(csv), target="label", model=f"transfer:{empty}", epochs=1, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # stopped before anything was written
    with pytest.raises(SourceNotFoundError, match="no such checkpoint folder"):
        check_weights(f"transfer:{tmp_path / 'gone'}", None)
    with pytest.raises(SettingsError, match="takes its pretrained weights from the folder"):
        check_weights(f"transfer:{checkpoint}", str(checkpoint / "model.safetensors"))
    spec = _spec(8, 30)
    with pytest.raises(SourceNotFoundError, match="holds no copy of its config"):
        create(f"transfer:{tmp_path / 'gone'}", spec, OutputSpec("classification", 2))
    with pytest.raises(SettingsError, match="pooling must be"):
        create(f"transfer:{checkpoint}", spec, OutputSpec("classification", 2), pooling="max")
    with pytest.raises(SettingsError, match="positions"):
        build_model(f"transfer:{checkpoint}", {}, _spec(100, 30), OutputSpec("classification", 2),
                    None, Notes())


def test_weights_none_trains_the_checkpoint_architecture_from_random_weights(checkpoint, tmp_path):
    """--weights none: the folder's architecture, random weights, so no staged fine-tuning."""
    csv = tmp_path / "reviews.csv"
    _corpus(80, seed=2).to_csv(csv, index=False)
    run = deepfit.train(str(csv), target="label", model=f"transfer:{checkpoint}", weights="none",
                        epochs=1, out=tmp_path / "run", report=False, progress=False)
    assert "stage" not in run.history[0]  # every group trained from the first epoch
    assert "param_groups" not in json.loads((run.path / "config.json").read_text())["model"]
    assert any("starts from random weights, as asked" in d for d in run.notes.decisions)
    assert not any("pretrained bert encoder" in d for d in run.notes.decisions)
