#!/usr/bin/env python3
"""Generate golden reference values for Phalanx tests.

Inputs are drawn with NumPy, rounded to float32, and stored as exact float32
values. References are computed in float64 from those float32 inputs.

Run from the repository root:
    python3 Tests/Golden/make_golden.py

Writes:
    Tests/PhalanxTensorTests/Resources/golden_tensor.json
    Tests/PhalanxNNTests/Resources/golden_optim.json
    Tests/PhalanxNNTests/Resources/golden_loss.json

Only NumPy and the Python standard library are used. The seed is fixed, so
the output is deterministic.
"""

import json
import math
import os
import sys

import numpy as np

SEED = 20240531
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TENSOR_OUT = os.path.join(ROOT, "Tests", "PhalanxTensorTests", "Resources", "golden_tensor.json")
OPTIM_OUT = os.path.join(ROOT, "Tests", "PhalanxNNTests", "Resources", "golden_optim.json")
# The cross-entropy cases again, for the loss function that PhalanxNN implements.
LOSS_OUT = os.path.join(ROOT, "Tests", "PhalanxNNTests", "Resources", "golden_loss.json")

rng = np.random.default_rng(SEED)


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------

def f32(a):
    """Round to float32 and return a float64 array holding those exact values."""
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def normal(*shape):
    return f32(rng.standard_normal(shape))


def positive(*shape):
    return f32(rng.uniform(0.1, 3.0, shape))


def away_from_zero(*shape):
    """Random sign, |value| >= 0.5 (for divisors)."""
    sign = np.where(rng.standard_normal(shape) >= 0, 1.0, -1.0)
    mag = 0.5 + np.abs(rng.standard_normal(shape))
    return f32(sign * mag)


def enc_input(a):
    """Encode a float32-valued array: exact float32 values as JSON doubles."""
    a = np.asarray(a, dtype=np.float64)
    data = [float(np.float32(x)) for x in a.reshape(-1)]
    assert all(math.isfinite(x) for x in data)
    return {"shape": list(a.shape), "data": data}


def enc_output(a):
    """Encode a float64 reference value."""
    a = np.asarray(a, dtype=np.float64)
    data = [float(x) + 0.0 for x in a.reshape(-1)]  # + 0.0 turns -0.0 into 0.0
    assert all(math.isfinite(x) for x in data), "non-finite reference"
    return {"shape": list(a.shape), "data": data}


tensor_cases = []
_names = set()


def add_case(name, op, inputs, outputs, params=None):
    assert name not in _names, name
    _names.add(name)
    tensor_cases.append({
        "name": name,
        "op": op,
        "inputs": {k: enc_input(v) for k, v in inputs.items()},
        "params": dict(params or {}),
        "outputs": {k: enc_output(v) for k, v in outputs.items()},
    })


def sx(shape):
    return "x".join(str(d) for d in shape) if shape else "scalar"


# float64 reference implementations ------------------------------------------

def ref_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def ref_log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ref_sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def ref_gelu(x):
    # Exact (erf) GELU: 0.5*x*(1+erf(x/sqrt(2))). Evaluated as 0.5*x*erfc(-x/sqrt(2)),
    # which is the same function but avoids cancellation in 1+erf(.) for negative x.
    return np.array([0.5 * v * math.erfc(-v / math.sqrt(2.0)) for v in x.reshape(-1)],
                    dtype=np.float64).reshape(x.shape)


def ref_argmax(x, axis):
    # np.argmax returns the first index of the maximum.
    return np.argmax(x, axis=axis).astype(np.float64)


# ----------------------------------------------------------------------------
# Tensor cases
# ----------------------------------------------------------------------------

def gen_tensor_cases():
    # matmul ---------------------------------------------------------------
    for (m, k, n) in [(1, 1, 1), (1, 7, 1), (7, 1, 7), (13, 17, 11), (64, 65, 63),
                      (0, 5, 3), (4, 0, 3)]:
        a, b = normal(m, k), normal(k, n)
        add_case(f"matmul_{m}x{k}_{k}x{n}", "matmul", {"a": a, "b": b},
                 {"out": a @ b}, {"transA": 0, "transB": 0})
    m, k, n = 11, 13, 7
    a, b = normal(k, m), normal(k, n)           # a stored [K,M]
    add_case(f"matmul_tA_{k}x{m}_{k}x{n}", "matmul", {"a": a, "b": b},
             {"out": a.T @ b}, {"transA": 1, "transB": 0})
    a, b = normal(m, k), normal(n, k)           # b stored [N,K]
    add_case(f"matmul_tB_{m}x{k}_{n}x{k}", "matmul", {"a": a, "b": b},
             {"out": a @ b.T}, {"transA": 0, "transB": 1})
    a, b = normal(k, m), normal(n, k)
    add_case(f"matmul_tAtB_{k}x{m}_{n}x{k}", "matmul", {"a": a, "b": b},
             {"out": a.T @ b.T}, {"transA": 1, "transB": 1})

    # matvec ---------------------------------------------------------------
    for (m, n) in [(1, 1), (5, 1), (1, 5), (17, 13)]:
        a, x = normal(m, n), normal(n)
        add_case(f"matvec_{m}x{n}", "matvec", {"a": a, "x": x}, {"out": a @ x})

    # binary elementwise ----------------------------------------------------
    binops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
    same_shapes = [(1, 1), (1, 9), (9, 1), (7, 13), (0, 4)]
    bcast_shapes = [(7, 13), (1, 5), (9, 1)]
    for op, fn in binops.items():
        draw_b = away_from_zero if op == "div" else normal
        for shp in same_shapes:
            a, b = normal(*shp), draw_b(*shp)
            add_case(f"{op}_{sx(shp)}", op, {"a": a, "b": b}, {"out": fn(a, b)})
        for (m, n) in bcast_shapes:
            a, b = normal(m, n), draw_b(n)
            add_case(f"{op}_{m}x{n}_bcast_{n}", op, {"a": a, "b": b}, {"out": fn(a, b)})

    # scalar ops -------------------------------------------------------------
    for op, fn in [("add_scalar", np.add), ("mul_scalar", np.multiply)]:
        for shp, s in [((1, 1), 2.5), ((7, 13), 2.5), ((7, 13), -0.75), ((0, 3), 2.5)]:
            a = normal(*shp)
            tag = str(s).replace("-", "m").replace(".", "p")
            add_case(f"{op}_{sx(shp)}_{tag}", op, {"a": a}, {"out": fn(a, s)}, {"scalar": s})

    # unary ----------------------------------------------------------------
    unary = {
        "relu": lambda x: np.maximum(x, 0.0),
        "gelu": ref_gelu,
        "tanh": np.tanh,
        "sigmoid": ref_sigmoid,
        "exp": np.exp,
        "log": np.log,
    }
    for op, fn in unary.items():
        draw = positive if op == "log" else normal
        for shp in [(1, 1), (1, 11), (11, 1), (7, 13), (0, 3)]:
            a = draw(*shp)
            add_case(f"{op}_{sx(shp)}", op, {"a": a}, {"out": fn(a)})
    for op in ["sigmoid", "tanh"]:
        a = np.concatenate([f32([[-30.0, 30.0, -15.0, 15.0, -8.0, 8.0]]), normal(1, 6)], axis=1)
        add_case(f"{op}_large_1x12", op, {"a": a}, {"out": unary[op](a)})

    # reductions -----------------------------------------------------------
    reds = {
        "sum": lambda x, ax: x.sum(axis=ax),
        "mean": lambda x, ax: x.mean(axis=ax),
        "max": lambda x, ax: x.max(axis=ax),
        "argmax": ref_argmax,
    }
    for op, fn in reds.items():
        for shp in [(1, 1), (1, 9), (9, 1), (7, 13)]:
            for ax in (0, 1):
                a = normal(*shp)
                add_case(f"{op}_{sx(shp)}_axis{ax}", op, {"a": a}, {"out": fn(a, ax)}, {"axis": ax})
    a = normal(3, 0)
    add_case("sum_3x0_axis1", "sum", {"a": a}, {"out": a.sum(axis=1)}, {"axis": 1})

    # softmax / log_softmax --------------------------------------------------
    def large_logits(scale, rows=3, cols=6):
        hi = scale + rng.standard_normal((1, cols))
        lo = -scale + rng.standard_normal((1, cols))
        mixed = np.where(rng.standard_normal((1, cols)) >= 0, scale, -scale) \
            + rng.standard_normal((1, cols))
        mixed[0, 0], mixed[0, 1] = scale + 0.5, -scale - 0.5   # ensure both signs
        return f32(np.concatenate([hi, lo, mixed], axis=0)[:rows])

    for op, fn in [("softmax", ref_softmax), ("log_softmax", ref_log_softmax)]:
        for shp in [(1, 1), (1, 10), (7, 13)]:
            a = normal(*shp)
            add_case(f"{op}_{sx(shp)}", op, {"a": a}, {"out": fn(a)})
        a = large_logits(1000.0)
        add_case(f"{op}_large_3x6", op, {"a": a}, {"out": fn(a)})

    # norms ----------------------------------------------------------------
    norms = {
        "norm2": lambda x: np.sqrt(np.sum(x * x)),
        "norm1": lambda x: np.sum(np.abs(x)),
        "normInf": lambda x: np.max(np.abs(x)),
    }
    for op, fn in norms.items():
        for shp in [(1, 1), (1, 9), (7, 13)]:
            a = normal(*shp)
            add_case(f"{op}_{sx(shp)}", op, {"a": a}, {"out": np.float64(fn(a))})
    for op in ["norm2", "norm1"]:
        a = normal(0, 3)
        add_case(f"{op}_0x3", op, {"a": a}, {"out": np.float64(0.0)})

    # axpy / scale -----------------------------------------------------------
    for shp, alpha in [((1, 1), 0.5), ((7, 13), -1.25), ((1, 9), 2.0), ((0, 3), 0.5)]:
        x, y = normal(*shp), normal(*shp)
        tag = str(alpha).replace("-", "m").replace(".", "p")
        add_case(f"axpy_{sx(shp)}_{tag}", "axpy", {"x": x, "y": y},
                 {"out": y + alpha * x}, {"alpha": alpha})
    for shp, alpha in [((1, 1), 3.0), ((7, 13), -0.5), ((9, 1), 0.0), ((0, 3), 2.0)]:
        a = normal(*shp)
        tag = str(alpha).replace("-", "m").replace(".", "p")
        add_case(f"scale_{sx(shp)}_{tag}", "scale", {"a": a}, {"out": alpha * a}, {"alpha": alpha})

    # cross entropy ------------------------------------------------------------
    def ce(logits, labels):
        b, c = logits.shape
        idx = labels.astype(np.int64)
        lsm = ref_log_softmax(logits)
        loss = -lsm[np.arange(b), idx].mean()
        onehot = np.zeros_like(logits)
        onehot[np.arange(b), idx] = 1.0
        grad = (ref_softmax(logits) - onehot) / b
        return np.float64(loss), grad

    for (b, c) in [(1, 1), (1, 10), (7, 13)]:
        logits = normal(b, c)
        labels = rng.integers(0, c, size=b).astype(np.float64)
        loss, grad = ce(logits, labels)
        add_case(f"cross_entropy_{b}x{c}", "cross_entropy",
                 {"logits": logits, "labels": labels}, {"loss": loss, "grad": grad})
    logits = large_logits(500.0)
    # labels: the max entry of row 0, a non-max entry in row 1, a -500 entry in row 2
    labels = np.array([float(np.argmax(logits[0])), float(np.argmin(logits[1])), 1.0])
    loss, grad = ce(logits, labels)
    add_case("cross_entropy_large_3x6", "cross_entropy",
             {"logits": logits, "labels": labels}, {"loss": loss, "grad": grad})


# ----------------------------------------------------------------------------
# Optimizer cases (torch.optim semantics)
# ----------------------------------------------------------------------------

DEFAULT_HYPER = {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": 0,
                 "weightDecay": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def run_sgd(p, grads, h):
    p = p.copy()
    buf = None
    traj = []
    for grad in grads:
        g = grad + h["weightDecay"] * p
        if h["momentum"] != 0:
            if buf is None:
                buf = g.copy()
            else:
                buf = h["momentum"] * buf + (1.0 - h["dampening"]) * g
            g = g + h["momentum"] * buf if h["nesterov"] else buf
        p = p - h["lr"] * g
        traj.append(p.copy())
    return traj


def run_adam(p, grads, h, decoupled):
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    b1, b2, lr, eps, wd = h["beta1"], h["beta2"], h["lr"], h["eps"], h["weightDecay"]
    traj = []
    for t, grad in enumerate(grads, start=1):
        if decoupled:
            p = p * (1.0 - lr * wd)
            g = grad
        else:
            g = grad + wd * p
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        mhat = m / (1.0 - b1 ** t)
        vhat = v / (1.0 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
        traj.append(p.copy())
    return traj


def gen_optim_cases(n_params=7, n_steps=5):
    specs = [
        ("sgd_plain", "sgd", {"lr": 0.1}),
        ("sgd_momentum", "sgd", {"lr": 0.1, "momentum": 0.9}),
        ("sgd_momentum_dampening", "sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}),
        ("sgd_nesterov_wd", "sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": 1, "weightDecay": 0.01}),
        ("adam", "adam", {"lr": 0.01}),
        ("adam_wd", "adam", {"lr": 0.01, "weightDecay": 0.1}),
        ("adamw_wd", "adamw", {"lr": 0.01, "weightDecay": 0.1}),
        ("adam_eps_betas", "adam", {"lr": 0.01, "eps": 1e-3, "beta1": 0.8, "beta2": 0.9}),
    ]
    cases = []
    for name, opt, over in specs:
        h = dict(DEFAULT_HYPER)
        h.update(over)
        p0 = normal(n_params)
        grads = [normal(n_params) for _ in range(n_steps)]
        if opt == "sgd":
            traj = run_sgd(p0, grads, h)
        else:
            traj = run_adam(p0, grads, h, decoupled=(opt == "adamw"))
        for row in traj:
            assert np.all(np.isfinite(row))
        cases.append({
            "name": name,
            "optimizer": opt,
            "hyper": h,
            "initial": enc_input(p0)["data"],
            "gradients": [enc_input(g)["data"] for g in grads],
            "trajectory": [[float(x) for x in row] for row in traj],
        })
    return cases


# ----------------------------------------------------------------------------
# Sanity checks
# ----------------------------------------------------------------------------

def sanity_check():
    for c in tensor_cases:
        for nm, t in list(c["inputs"].items()) + list(c["outputs"].items()):
            assert len(t["data"]) == int(np.prod(t["shape"])), (c["name"], nm)
            if not (c["op"] == "matmul" and "64x65" in c["name"]):
                assert len(t["data"]) <= 600, (c["name"], nm, len(t["data"]))
        out = c["outputs"].get("out")
        if c["op"] == "softmax":
            o = np.array(out["data"]).reshape(out["shape"])
            assert np.allclose(o.sum(axis=-1), 1.0, atol=1e-12), c["name"]
            assert np.all(o >= 0)
        if c["op"] == "log_softmax":
            o = np.array(out["data"]).reshape(out["shape"])
            assert np.allclose(np.exp(o).sum(axis=-1), 1.0, atol=1e-12), c["name"]
        if c["op"] == "cross_entropy":
            g = c["outputs"]["grad"]
            o = np.array(g["data"]).reshape(g["shape"])
            assert np.allclose(o.sum(axis=-1), 0.0, atol=1e-12), c["name"]
            assert c["outputs"]["loss"]["data"][0] >= 0.0
        if c["op"] in ("sigmoid",):
            o = np.array(out["data"])
            assert np.all((o >= 0) & (o <= 1))
    # Cross-check gelu against the literal erf formula (absolute tolerance: the
    # literal form loses relative accuracy for negative x through cancellation).
    x = np.linspace(-6, 6, 97)
    alt = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    assert np.allclose(ref_gelu(x), alt, rtol=1e-14, atol=1e-15)


def main():
    gen_tensor_cases()
    sanity_check()
    optim_cases = gen_optim_cases()
    loss_cases = [c for c in tensor_cases if c["op"] == "cross_entropy"]
    for path, obj in [(TENSOR_OUT, {"cases": tensor_cases}), (OPTIM_OUT, {"cases": optim_cases}),
                      (LOSS_OUT, {"cases": loss_cases})]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(obj, f, separators=(",", ":"), allow_nan=False)
            f.write("\n")
        print(f"wrote {os.path.relpath(path, ROOT)}: {len(obj['cases'])} cases, "
              f"{os.path.getsize(path)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
