#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/{safetensors,npy,csv,checkpoint}/: a few small valid files (several made
by the reference libraries numpy and safetensors) and invalid ones covering each documented error.

    python3 fuzz/make_corpus.py        # needs numpy and safetensors (pip install numpy safetensors)

The output is deterministic; the generated files are committed, so this only needs rerunning to change them.
"""
import io
import json
import os
import shutil
import struct

import numpy as np
from safetensors.numpy import save as st_save

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def st_raw(header, data=b"", length=None):
    """A safetensors file: 8-byte little-endian length, header bytes (a dict is JSON-encoded), data."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":")).encode()
    elif isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header) if length is None else length) + header + data


# ---------------------------------------------------------------- safetensors
def safetensors():
    t = "safetensors"
    put(t, "valid-empty", st_raw("{}      "))
    put(t, "valid-lib-f32", st_save({"w": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5}))
    put(t, "valid-lib-dtypes", st_save({
        "f64": np.array([0.5, -1e300, np.nan], dtype=np.float64),
        "f32": np.array([[1.5, -0.0]], dtype=np.float32),
        "f16": np.array([1, 2], dtype=np.float16),
        "i64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
        "i32": np.array([-5], dtype=np.int32),
        "i16": np.array([-300, 7], dtype=np.int16),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u64": np.array([2**64 - 1], dtype=np.uint64),
        "u32": np.array([4000000000], dtype=np.uint32),
        "u16": np.array([65535], dtype=np.uint16),
        "u8": np.array([255, 0], dtype=np.uint8),
        "b": np.array([True, False]),
    }, metadata={"format": "pt", "note": "a\"b\\c\u00e9"}))
    put(t, "valid-lib-scalar-and-empty", st_save({"s": np.array(3, dtype=np.int64), "e": np.zeros((0, 4), dtype=np.float32)}))
    put(t, "valid-bf16", st_raw({"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\x80\x3f\x00\x40"))
    put(t, "valid-unicode-names", st_raw(
        {"__metadata__": {"k\u00e9y": "v\u2603"}, "\u00e9\U0001f30a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
         "a\nb": {"dtype": "I8", "shape": [1, 1], "data_offsets": [1, 2]}}, b"\x01\xff"))
    put(t, "bad-short", b"\x05\x00\x00")
    put(t, "bad-header-length-zero", b"\x00" * 8 + b"{}")
    put(t, "bad-header-beyond-file", st_raw("{}", length=1000))
    put(t, "bad-header-huge", st_raw("{}", length=2**63))
    put(t, "bad-not-json", st_raw("{not json"))
    put(t, "bad-not-object", st_raw("[1,2]"))
    put(t, "bad-not-utf8", st_raw(b'{"\xff":1}'.decode("latin-1")))
    put(t, "bad-unknown-dtype", st_raw({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8))
    put(t, "bad-missing-key", st_raw({"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4))
    put(t, "bad-shape-overflow", st_raw({"x": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}, b"\0" * 8))
    put(t, "bad-shape-negative", st_raw({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4))
    put(t, "bad-shape-float", st_raw('{"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', b"\0" * 4))
    put(t, "bad-offsets-beyond", st_raw({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4))
    put(t, "bad-offsets-reversed", st_raw({"x": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}, b"\0" * 4))
    put(t, "bad-overlap", st_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8))
    put(t, "bad-gap", st_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8))
    put(t, "bad-length-mismatch", st_raw({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8))
    put(t, "bad-metadata-not-string", st_raw({"__metadata__": {"k": 1}}))
    put(t, "bad-metadata-not-object", st_raw({"__metadata__": "x"}))
    put(t, "bad-entry-not-object", st_raw({"a": [1]}))
    put(t, "bad-duplicate-keys", st_raw('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0\0"))


# ---------------------------------------------------------------- npy
def npy_bytes(array, version=None, **kwargs):
    buffer = io.BytesIO()
    if version is None:
        np.save(buffer, array, **kwargs)
    else:
        np.lib.format.write_array(buffer, array, version=version, **kwargs)
    return buffer.getvalue()


def npy_header(header, version=(1, 0)):
    """A .npy file prefix with a raw header dictionary text (padded like NumPy, ending in a newline)."""
    text = header.encode("latin-1") if isinstance(header, str) else header
    size_length = 2 if version == (1, 0) else 4
    total = 6 + 2 + size_length + len(text) + 1
    text += b" " * ((64 - total % 64) % 64) + b"\n"
    length = struct.pack("<H" if size_length == 2 else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text


def npy():
    t = "npy"
    put(t, "valid-f4", npy_bytes(np.array([[1.5, -2], [0.25, 3e38]], dtype="<f4")))
    put(t, "valid-f8", npy_bytes(np.array([[1e-300, -0.0, 5]], dtype="<f8")))
    put(t, "valid-f8-v2", npy_bytes(np.array([[1.0], [2.0]], dtype="<f8"), version=(2, 0)))
    put(t, "valid-f4-v3", npy_bytes(np.array([[7.0, 8.0]], dtype="<f4"), version=(3, 0)))
    put(t, "valid-python2-long", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }") + struct.pack("<2f", 1, 2))
    put(t, "bad-magic", b"\x93NUMPZ\x01\x00" + b"\0" * 20)
    put(t, "bad-zip", b"PK\x03\x04" + b"\0" * 30)
    put(t, "bad-version", b"\x93NUMPY\x04\x00\x10\x00" + b" " * 16)
    put(t, "bad-short", b"\x93NUMPY\x01")
    put(t, "bad-header-beyond", b"\x93NUMPY\x01\x00\xff\x7f{}")
    put(t, "bad-big-endian", npy_bytes(np.array([[1.0, 2.0]], dtype=">f8")))
    put(t, "bad-fortran", npy_bytes(np.asfortranarray(np.array([[1.0, 2.0], [3.0, 4.0]], dtype="<f4"))))
    put(t, "bad-1d", npy_bytes(np.array([1.0, 2.0], dtype="<f4")))
    put(t, "bad-3d", npy_bytes(np.zeros((1, 2, 1), dtype="<f4")))
    put(t, "bad-empty", npy_bytes(np.zeros((0, 2), dtype="<f4")))
    put(t, "bad-int", npy_bytes(np.array([[1, 2]], dtype="<i8")))
    put(t, "bad-object", npy_bytes(np.array([[1, "a"]], dtype=object), allow_pickle=True))
    put(t, "bad-structured", npy_bytes(np.zeros((1, 1), dtype=[("a", "<f4"), ("b", "<f8")])))
    put(t, "bad-nan", npy_bytes(np.array([[1.0, np.nan]], dtype="<f8")))
    put(t, "bad-inf", npy_bytes(np.array([[-np.inf]], dtype="<f4")))
    put(t, "bad-truncated", npy_bytes(np.array([[1.0, 2.0]], dtype="<f8"))[:-3])
    put(t, "bad-trailing", npy_bytes(np.array([[1.0]], dtype="<f4")) + b"\0")
    put(t, "bad-header-syntax", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2.5), }") + b"\0" * 8)
    put(t, "bad-extra-key", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), 'x': None, }") + b"\0" * 4)
    put(t, "bad-nesting", npy_header("{'descr': " + "(" * 40 + ")" * 40 + "}"))
    put(t, "bad-shape-overflow", npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"))
    put(t, "bad-v3-utf8", npy_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), '\xff': 1}", version=(3, 0)))


# ---------------------------------------------------------------- csv
def csv():
    t = "csv"
    put(t, "valid-plain", "1,2\n3.5,-4e-3\n")
    put(t, "valid-header", "x,y\n0.1,0.2\n.5,3.\n")
    put(t, "valid-quoted-header-crlf", "\ufeff\"a\" , b\r\n1 ,\t2\r\n\r\n-1E+10,+0\r\n")
    put(t, "valid-blank-lines", "\n  \n1\n\t\n2")
    put(t, "valid-one-column", "v\n1\n2\n3\n")
    put(t, "valid-extremes", "1.7976931348623157e308,5e-324,-0.0\n")
    put(t, "bad-empty", "")
    put(t, "bad-blank-only", "\n \n\t\n")
    put(t, "bad-header-only", "a,b\n")
    put(t, "bad-ragged", "1,2\n3\n")
    put(t, "bad-text", "1,2\n3,abc\n")
    put(t, "bad-empty-field", "1,,2\n")
    put(t, "bad-nan", "1,nan\n")
    put(t, "bad-inf", "-Infinity,1\n")
    put(t, "bad-overflow", "1e400\n")
    put(t, "bad-hex", "0x1p3\n")
    put(t, "bad-nul", b"1,2\n3,\x004\n")
    put(t, "bad-utf8", b"a,\xff\n1,2\n")
    put(t, "bad-long-line", "1," * 2100 + "1\n")


# ---------------------------------------------------------------- checkpoint
def masks(config):
    d, k = config["dim"], config["couplings"]
    if "masks" in config:
        return config["masks"]
    out = []
    for i in range(k):
        row = []
        for j in range(d):
            if config.get("mask", "alternating") == "alternating":
                first = 0 if j < (d + 1) // 2 else 1
            elif "image_shape" in config:
                w = config["image_shape"][1]
                first = (j // w + j % w) % 2
            else:
                first = j % 2
            row.append(first if i % 2 == 0 else 1 - first)
        out.append(row)
    return out


def checkpoint_bytes(config, state=False, best=False, training=None, extra_metadata=None, model_override=None):
    """A checkpoint as Checkpoint.serialize() lays it out (tensor order and all), small deterministic values.
    model_override: fields replaced in the metadata's model JSON only (the tensors follow `config`)."""
    d, h, layers = config["dim"], config["hidden"], config["hidden_layers"]
    rng = np.random.default_rng(sum(map(ord, json.dumps(config))))
    tensors = [("normalizer.mean", np.linspace(-1, 1, d).astype("<f4")), ("normalizer.std", np.linspace(0.5, 2, d).astype("<f4"))]
    slots = []
    for k in range(config["couplings"]):
        tensors.append((f"couplings.{k}.mask", np.array(masks(config)[k], dtype="<f4")))
        for net in "st":
            for j in range(layers + 1):
                fan_in, fan_out = (d if j == 0 else h), (d if j == layers else h)
                slots.append((f"couplings.{k}.{net}.{j}.weight", (fan_out, fan_in)))
                slots.append((f"couplings.{k}.{net}.{j}.bias", (fan_out,)))
        if config.get("learnable_scale"):
            slots.append((f"couplings.{k}.scale", (d,)))
        for name, shape in slots[len([s for s in slots if not s[0].startswith(f"couplings.{k}.")]):]:
            tensors.append((name, (rng.integers(-8, 8, size=shape) / 8).astype("<f4")))
    if state:
        for prefix in ["optimizer.exp_avg.", "optimizer.exp_avg_sq."]:
            for name, shape in slots:
                tensors.append((prefix + name, (rng.integers(0, 8, size=shape) / 64).astype("<f4")))
        tensors.append(("training.step", np.array(12, dtype="<i8")))
        tensors.append(("training.optimizer_step", np.array(11, dtype="<i8")))
        if best:
            tensors.append(("training.best_validation_nll", np.array([1.25], dtype="<f8")))
            tensors.append(("training.best_epoch", np.array([3], dtype="<i8")))
    metadata = dict(extra_metadata or {})
    metadata.update({"format": "realnvp-flow", "format_version": "1",
                     "model": json.dumps(dict(config, **(model_override or {})), separators=(",", ":"), sort_keys=True)})
    if training is not None:
        metadata["training"] = json.dumps(training, separators=(",", ":"), sort_keys=True)
    header = {"__metadata__": dict(sorted(metadata.items()))}
    data = b""
    for name, array in tensors:
        raw = array.tobytes()
        header[name] = {"dtype": {"f": "F32" if array.itemsize == 4 else "F64", "i": "I64"}[array.dtype.kind],
                        "shape": list(array.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def checkpoint():
    t = "checkpoint"
    small = {"couplings": 2, "dim": 2, "hidden": 3, "hidden_layers": 1, "learnable_scale": False, "mask": "alternating"}
    training = {"adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08}, "batchSize": 8, "epochs": 2, "l2": 0,
                "learningRate": 0.001, "microBatch": 4, "model": small, "onNonFinite": "skip", "reproducible": False,
                "schedule": {"constant": {}}, "seed": 0, "validationFraction": 0.2}
    put(t, "valid-model", checkpoint_bytes(small))
    put(t, "valid-state", checkpoint_bytes(small, state=True, training=training, extra_metadata={"data": "moons"}))
    put(t, "valid-state-best", checkpoint_bytes(small, state=True, best=True))
    put(t, "valid-scale-odd-dim", checkpoint_bytes({"couplings": 1, "dim": 3, "hidden": 2, "hidden_layers": 2, "learnable_scale": True, "mask": "alternating"}))
    put(t, "valid-image-checkerboard", checkpoint_bytes({"couplings": 2, "dim": 4, "hidden": 2, "hidden_layers": 1, "image_shape": [2, 2], "learnable_scale": False, "mask": "checkerboard"}))
    put(t, "valid-custom-masks", checkpoint_bytes({"couplings": 2, "dim": 3, "hidden": 2, "hidden_layers": 1, "learnable_scale": False, "mask": "alternating", "masks": [[1, 0, 0], [0, 1, 1]]}))
    put(t, "bad-format", checkpoint_bytes(small, extra_metadata={"format": "other"}).replace(b'"format":"realnvp-flow"', b'"format":"realnvp-floW"'))
    put(t, "bad-version", checkpoint_bytes(small).replace(b'"format_version":"1"', b'"format_version":"7"'))
    put(t, "bad-config", checkpoint_bytes({"couplings": 0, "dim": 2, "hidden": 3, "hidden_layers": 1}))
    # Configurations whose layout would be huge or overflow Int: the loader must refuse them, not allocate.
    put(t, "bad-huge-hidden", checkpoint_bytes(small, model_override={"hidden": 3000000000}))
    put(t, "bad-overflow-hidden", checkpoint_bytes(small, model_override={"hidden": 2**32, "hidden_layers": 2}))
    put(t, "bad-huge-couplings", checkpoint_bytes(small, model_override={"couplings": 10**9}))
    put(t, "bad-huge-dim", checkpoint_bytes(small, model_override={"dim": 10**12}))
    put(t, "bad-image-shape-overflow", checkpoint_bytes(small, model_override={"image_shape": [2**32, 2**32], "mask": "checkerboard"}))
    put(t, "bad-std", checkpoint_bytes(small).replace(struct.pack("<f", 0.5), struct.pack("<f", -0.5), 1))
    put(t, "not-a-checkpoint", st_save({"w": np.ones((2, 2), dtype=np.float32)}))


if __name__ == "__main__":
    for target, make in [("safetensors", safetensors), ("npy", npy), ("csv", csv), ("checkpoint", checkpoint)]:
        shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)
        make()
        print(f"{target}: {len(os.listdir(os.path.join(CORPUS, target)))} files")
