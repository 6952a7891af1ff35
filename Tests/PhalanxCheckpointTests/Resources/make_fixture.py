"""Writes python_written.safetensors with Python's `safetensors` package (0.8) and NumPy.

The Swift tests load it and compare against the values below, so the Swift reader is checked
against the reference implementation's output, not against our own writer.
Run from this directory: python3 make_fixture.py
"""
import numpy as np
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file

a = np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5       # [[-0.5,-0.25,0],[0.25,0.5,0.75]]
b = np.array([1.5, -2.25, 1e-3, 3e5], dtype=np.float64)
c = np.array([0.5, -1.0, 65504.0], dtype=np.float16)
empty = np.zeros((0, 3), dtype=np.float32)
save_file({"a": a, "b": b, "c": c, "empty": empty}, "python_numpy.tmp", metadata={"step": "42", "writer": "safetensors-python"})

# bfloat16 is not a NumPy type: write its raw bytes (the top 16 bits of float32) through the
# package's dtype-agnostic serializer, together with the tensors above.
d32 = np.array([1.0, -2.0, 0.15625, 3.0e38], dtype=np.float32)
d = (d32.view(np.uint32) >> 16).astype(np.uint16)
def spec(array, dtype, shape):
    array = np.ascontiguousarray(array)
    return TensorSpec(dtype=dtype, shape=shape, data_ptr=array.ctypes.data, data_len=array.nbytes)

keep = [a, b, c, d, empty]  # the arrays must outlive serialization
tensors = {
    "a": spec(a, "float32", [2, 3]),
    "b": spec(b, "float64", [4]),
    "c": spec(c, "float16", [3]),
    "d": spec(d, "bfloat16", [2, 2]),
    "empty": spec(empty, "float32", [0, 3]),
}
serialize_file(tensors, "python_written.safetensors", metadata={"step": "42", "writer": "safetensors-python"})
import os
os.remove("python_numpy.tmp")
print("bf16 values:", (d.astype(np.uint32) << 16).view(np.float32).tolist())
