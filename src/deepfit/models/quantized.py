"""Dynamic int8 quantisation of a model's Linear, LSTM and GRU layers (PyTorch's
`torch.ao.quantization.quantize_dynamic`: weights stored as int8 with a per-tensor scale,
activations quantised on the fly, for CPU inference), and its saved form as plain tensors.

A quantised layer's state is packed C++ objects that safetensors cannot hold, and loading must
never unpickle; so each quantised weight is saved as three tensors, `NAME.int8` (its integer
values), `NAME.scale` and `NAME.zero_point`, beside the float tensors of the other layers.
Loading rebuilds the float architecture, quantises it again (the same modules) and sets the
saved integers back: the reloaded model computes exactly what the saved one did.

    q = quantize_int8(model)                  # a quantised copy; `model` is left as it was
    tensors = quantized_state(q)              # {name: tensor}, for safetensors
    q2 = load_quantized(build(), tensors)     # the same model, from a fresh float build
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

DYNAMIC_INT8 = "dynamic_int8"  # the name model.json's architecture records ("quantization")
LAYERS = (nn.Linear, nn.LSTM, nn.GRU)  # what quantize_dynamic replaces


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` (on the CPU, eval mode) with its Linear, LSTM and GRU layers quantised
    to int8 by `torch.ao.quantization.quantize_dynamic` (per-tensor symmetric weights); those
    inside a transformer encoder layer stay float (its fast path needs float weights)."""
    from torch.ao.quantization import quantize_dynamic

    float_model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch.ao's eager quantisation warns it moves to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(float_model, _layer_names(float_model), dtype=torch.qint8)


def _layer_names(model: nn.Module) -> set[str]:
    """The Linear, LSTM and GRU layers to quantise, by name: all but those inside a
    TransformerEncoderLayer, whose fused fast path reads its Linear layers' weights as tensors."""
    inside = [name for name, m in model.named_modules() if isinstance(m, nn.TransformerEncoderLayer)]
    return {name for name, m in model.named_modules() if isinstance(m, LAYERS)
            and not any(name.startswith(f"{outer}.") for outer in inside)}


def _quantized_modules(model: nn.Module) -> dict[str, nn.Module]:
    from torch.ao.nn.quantized import dynamic

    kinds = (dynamic.Linear, dynamic.LSTM, dynamic.GRU)
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


def is_quantized(model: nn.Module) -> bool:
    return bool(_quantized_modules(model))


def _weights_of(module: nn.Module) -> dict[str, torch.Tensor | None]:
    """A quantised module's weights and biases by name (quantised tensors for the weights)."""
    found = module._weight_bias()
    if isinstance(found, dict):  # LSTM, GRU: {"weight": {weight_ih_l0: …}, "bias": {bias_ih_l0: …}}
        return {**found["weight"], **found["bias"]}
    weight, bias = found  # Linear
    return {"weight": weight, "bias": bias}


def quantized_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors of a quantised model, plain (int8 values, scales, zero points and the float
    tensors of the other layers), for a safetensors file."""
    quantized = _quantized_modules(model)
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and not value.is_quantized \
                and not any(key.startswith(f"{name}.") for name in quantized):
            state[key] = value
    for name, module in quantized.items():
        for part, tensor in _weights_of(module).items():
            if tensor is None:
                continue
            where = f"{name}.{part}"
            if tensor.is_quantized:
                state[f"{where}.int8"] = tensor.int_repr()
                state[f"{where}.scale"] = torch.tensor([tensor.q_scale()], dtype=torch.float64)
                state[f"{where}.zero_point"] = torch.tensor([tensor.q_zero_point()], dtype=torch.int64)
            else:
                state[where] = tensor
    return state


def load_quantized(float_model: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """`float_model` (a fresh build of the architecture) quantised as `quantize_int8` does, with
    the saved `tensors` (quantized_state's) set back. Raises ValueError when the tensors do not
    fit the architecture (names missing or unexpected, or shapes that differ)."""
    model = quantize_int8(float_model)
    quantized = _quantized_modules(model)
    expected = quantized_state(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise ValueError(f"the int8 weights do not fit the architecture ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected, {len(wrong)} of another shape; first: {first})")
    plain = {k: v for k, v in tensors.items() if not k.endswith((".int8", ".scale", ".zero_point"))
             and not any(k.startswith(f"{name}.") for name in quantized)}
    with torch.no_grad():  # the float layers' tensors, in place (the quantised ones own theirs)
        for key, value in plain.items():
            path, _, attr = key.rpartition(".")
            getattr(model.get_submodule(path), attr).copy_(value)
    for name, module in quantized.items():
        parts: dict[str, Any] = {}
        for part, current in _weights_of(module).items():
            where = f"{name}.{part}"
            if f"{where}.int8" in tensors:
                parts[part] = _quantized_tensor(
                    tensors[f"{where}.int8"], float(tensors[f"{where}.scale"][0]),
                    int(tensors[f"{where}.zero_point"][0]))
            else:
                parts[part] = tensors.get(where, current)
        if "weight" in parts and hasattr(module, "in_features"):
            module.set_weight_bias(parts["weight"], parts.get("bias"))
        else:
            module.set_weight_bias(parts)
    return model.eval()



def _quantized_tensor(values: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch._make_per_tensor_quantized_tensor(values, scale, zero_point)
