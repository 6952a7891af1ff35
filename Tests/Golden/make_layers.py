"""Golden values for PhalanxNN's convolution, pooling, normalisation and embedding layers,
made with PyTorch (float64).

Run from the repository root (needs torch; CI does not, the JSON is committed):
    python3 Tests/Golden/make_layers.py > Tests/PhalanxNNTests/Resources/golden_layers.json

Each case: the layer's settings, the input, the parameters, a fixed output gradient, and
PyTorch's output, input gradient and parameter gradients. Shapes are odd on purpose.
"""
import json

import torch

torch.manual_seed(20261201)


def values(t):
    return [round(float(v), 12) for v in t.detach().reshape(-1).tolist()]


def conv_case(name, n, c, h, w, out, kernel, stride, padding, bias=True):
    x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.Conv2d(c, out, kernel, stride=stride, padding=padding, bias=bias).double()
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    case = {
        "name": name, "layer": "conv2d", "input_shape": [n, c, h, w], "out_channels": out,
        "kernel": list(layer.kernel_size), "stride": list(layer.stride), "padding": list(layer.padding), "bias": bias,
        "input": values(x), "weight": values(layer.weight), "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "weight_gradient": values(layer.weight.grad),
    }
    if bias:
        case["bias_values"] = values(layer.bias)
        case["bias_gradient"] = values(layer.bias.grad)
    return case


def pool_case(name, kind, n, c, h, w, kernel, stride, padding):
    x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
    layer = (torch.nn.MaxPool2d if kind == "maxpool2d" else torch.nn.AvgPool2d)(kernel, stride=stride, padding=padding)
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]
    return {
        "name": name, "layer": kind, "input_shape": [n, c, h, w], "kernel": pair(kernel), "stride": pair(stride), "padding": pair(padding),
        "input": values(x), "output_shape": list(y.shape), "output": values(y), "output_gradient": values(dy), "input_gradient": values(x.grad),
    }


def layernorm_case(name, shape):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.LayerNorm(shape[-1]).double()
    with torch.no_grad():  # parameters away from their 1 and 0 start, so both are exercised
        layer.weight.copy_(torch.randn(shape[-1], dtype=torch.float64))
        layer.bias.copy_(torch.randn(shape[-1], dtype=torch.float64))
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    return {
        "name": name, "layer": "layernorm", "input_shape": list(shape), "features": shape[-1], "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": values(x), "weight": values(layer.weight), "bias_values": values(layer.bias), "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "weight_gradient": values(layer.weight.grad), "bias_gradient": values(layer.bias.grad),
    }


def embedding_case(name, count, dimension, shape):
    ids = torch.randint(0, count, shape)
    ids.view(-1)[1] = ids.view(-1)[0]  # a repeated id: its gradient rows add up
    layer = torch.nn.Embedding(count, dimension).double()
    y = layer(ids)
    dy = torch.randn_like(y)
    y.backward(dy)
    return {
        "name": name, "layer": "embedding", "input_shape": list(shape), "count": count, "dimension": dimension, "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": [float(v) for v in ids.reshape(-1).tolist()], "weight": values(layer.weight), "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": [0.0] * ids.numel(), "weight_gradient": values(layer.weight.grad),
    }


def attention_case(name, n, t, e, heads, causal):
    x = torch.randn(n, t, e, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.MultiheadAttention(e, heads, batch_first=True).double()
    with torch.no_grad():  # non-zero biases, so that their gradients are exercised
        layer.in_proj_bias.copy_(0.1 * torch.randn(3 * e, dtype=torch.float64))
        layer.out_proj.bias.copy_(0.1 * torch.randn(e, dtype=torch.float64))
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if causal else None
    y, _ = layer(x, x, x, attn_mask=mask, need_weights=False)
    dy = torch.randn_like(y)
    y.backward(dy)
    tensors = [layer.in_proj_weight, layer.in_proj_bias, layer.out_proj.weight, layer.out_proj.bias]
    return {
        "name": name, "layer": "attention", "input_shape": [n, t, e], "heads": heads, "causal": causal, "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": values(x), "parameters": [values(p) for p in tensors], "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "parameter_gradients": [values(p.grad) for p in tensors],
    }


def residual_case(name, rows, features):
    x = torch.randn(rows, features, dtype=torch.float64, requires_grad=True)
    first, second = torch.nn.Linear(features, features).double(), torch.nn.Linear(features, features).double()
    y = x + second(torch.relu(first(x)))
    dy = torch.randn_like(y)
    y.backward(dy)
    tensors = [first.weight, first.bias, second.weight, second.bias]
    return {
        "name": name, "layer": "residual_mlp", "input_shape": [rows, features], "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": values(x), "parameters": [values(p) for p in tensors], "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "parameter_gradients": [values(p.grad) for p in tensors],
    }


def linear_tokens_case(name, shape, out):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.Linear(shape[-1], out).double()
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    tensors = [layer.weight, layer.bias]
    return {
        "name": name, "layer": "linear", "input_shape": list(shape), "features": out, "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": values(x), "parameters": [values(p) for p in tensors], "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "parameter_gradients": [values(p.grad) for p in tensors],
    }


def positional_case(name, n, t, e, max_length):
    x = torch.randn(n, t, e, dtype=torch.float64, requires_grad=True)
    table = torch.nn.Embedding(max_length, e).double()
    y = x + table(torch.arange(t))
    dy = torch.randn_like(y)
    y.backward(dy)
    return {
        "name": name, "layer": "positional", "input_shape": [n, t, e], "count": max_length, "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": values(x), "parameters": [values(table.weight)], "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "parameter_gradients": [values(table.weight.grad)],
    }


def transformer_block_case(name, n, t, e, heads):
    """A GPT block as TinyGPT builds it: x + attn(ln1(x)), then h + mlp(ln2(h)), in two residuals."""
    x = torch.randn(n, t, e, dtype=torch.float64, requires_grad=True)
    ln1, ln2 = torch.nn.LayerNorm(e).double(), torch.nn.LayerNorm(e).double()
    attention = torch.nn.MultiheadAttention(e, heads, batch_first=True).double()
    up, down = torch.nn.Linear(e, 4 * e).double(), torch.nn.Linear(4 * e, e).double()
    with torch.no_grad():
        for p in (ln1.weight, ln1.bias, ln2.weight, ln2.bias):
            p.copy_(1 + 0.1 * torch.randn_like(p) if p is ln1.weight or p is ln2.weight else 0.1 * torch.randn_like(p))
        attention.in_proj_bias.copy_(0.1 * torch.randn(3 * e, dtype=torch.float64))
        attention.out_proj.bias.copy_(0.1 * torch.randn(e, dtype=torch.float64))
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    a = ln1(x)
    h = x + attention(a, a, a, attn_mask=mask, need_weights=False)[0]
    y = h + down(torch.nn.functional.gelu(up(ln2(h))))
    dy = torch.randn_like(y)
    y.backward(dy)
    tensors = [ln1.weight, ln1.bias, attention.in_proj_weight, attention.in_proj_bias, attention.out_proj.weight, attention.out_proj.bias,
               ln2.weight, ln2.bias, up.weight, up.bias, down.weight, down.bias]
    return {
        "name": name, "layer": "transformer_block", "input_shape": [n, t, e], "heads": heads, "causal": True, "kernel": [0, 0], "stride": [0, 0], "padding": [0, 0],
        "input": values(x), "parameters": [values(p) for p in tensors], "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "parameter_gradients": [values(p.grad) for p in tensors],
    }


cases = [
    conv_case("conv 3x3 stride 1 pad 1", 2, 3, 7, 5, 4, 3, 1, 1),
    conv_case("conv 3x3 stride 2 pad 1", 2, 3, 7, 6, 5, 3, 2, 1),
    conv_case("conv 2x3 stride (2,1) pad (0,1)", 3, 2, 6, 5, 3, (2, 3), (2, 1), (0, 1)),
    conv_case("conv 1x1 no bias", 2, 4, 3, 3, 2, 1, 1, 0, bias=False),
    conv_case("conv 5x5 no padding", 1, 1, 8, 8, 6, 5, 1, 0),
    pool_case("maxpool 2x2 stride 2", "maxpool2d", 2, 3, 6, 6, 2, 2, 0),
    pool_case("maxpool 3x3 stride 2 pad 1", "maxpool2d", 2, 2, 7, 5, 3, 2, 1),
    pool_case("maxpool 2x3 stride (1,2)", "maxpool2d", 1, 2, 5, 7, (2, 3), (1, 2), 0),
    pool_case("avgpool 2x2 stride 2", "avgpool2d", 2, 3, 6, 6, 2, 2, 0),
    pool_case("avgpool 3x3 stride 2 pad 1 (padding counted, as PyTorch's default)", "avgpool2d", 2, 2, 7, 5, 3, 2, 1),
    layernorm_case("layernorm rows of 7", (3, 7)),
    layernorm_case("layernorm [2, 3, 5]", (2, 3, 5)),
    embedding_case("embedding 11x4, ids [2, 5]", 11, 4, (2, 5)),
    attention_case("causal attention 2 heads, [2, 5, 6]", 2, 5, 6, 2, True),
    attention_case("attention 4 heads, [1, 4, 8], no mask", 1, 4, 8, 4, False),
    attention_case("causal attention 1 head, [3, 7, 3]", 3, 7, 3, 1, True),
    residual_case("residual Linear-ReLU-Linear on [3, 5]", 3, 5),
    linear_tokens_case("linear on tokens [2, 3, 5] -> 4", (2, 3, 5), 4),
    positional_case("positional embedding [2, 5, 3] of 7 positions", 2, 5, 3, 7),
    transformer_block_case("pre-LN causal transformer block, 2 heads, [2, 5, 6]", 2, 5, 6, 2),
]
print(json.dumps({"generator": "Tests/Golden/make_layers.py", "torch": torch.__version__, "cases": cases}))
