"""The shipped int8 MiniLM as a float graph, for devices without int8 kernels (CUDA).

Why: onnxruntime's dynamic quantisation (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul)
has no CUDA kernel for DynamicQuantizeLinear, so on a GPU every one of the 18 quantised MatMuls would
run on the CPU with copies each way. Dequantising the int8 weights once at load (W = (Wq - zp) * scale)
gives a plain fused fp32 graph (Attention, SkipLayerNorm, BiasGelu run on CUDA) with the same weights:
the CPU can run it too, which is how tests check it without a GPU. Needs `onnx` (in the gpu extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from papersift.index.embed import EmbedderUnavailable


def dequantized_model(path: Path) -> bytes:
    """The model at `path` with every dynamically quantised MatMul replaced by a float MatMul, serialised."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:
        raise EmbedderUnavailable("running the model as a float graph needs onnx: pip install 'papersift[gpu]'") from e
    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop: set[int] = set()
    added: list[tuple[Any, Any]] = []  # (MatMul node, the final Mul it replaces, for ordering)
    for mmi in [n for n in graph.node if n.op_type == "MatMulInteger"]:
        x_q, w_q, _, w_zp = mmi.input
        dql = producer[x_q]
        (cast,) = consumers[mmi.output[0]]
        (mul,) = consumers[cast.output[0]]
        scale_name = next(i for i in mul.input if i != cast.output[0])
        scale_mul = producer[scale_name]
        w_scale = next(i for i in scale_mul.input if i in inits)
        weight = numpy_helper.to_array(inits[w_q]).astype(np.float32)
        weight -= numpy_helper.to_array(inits[w_zp]).astype(np.float32)
        weight *= numpy_helper.to_array(inits[w_scale]).astype(np.float32)
        name = f"{w_q}_dequantized"
        graph.initializer.append(numpy_helper.from_array(weight, name))
        added.append((helper.make_node("MatMul", [dql.input[0], name], [mul.output[0]], name=f"{name}_MatMul"), mul))
        drop.update(id(n) for n in (mmi, cast, mul, scale_mul))
    for dql in [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]:
        if all(id(c) in drop for o in dql.output for c in consumers.get(o, [])):
            drop.add(id(dql))
    replacement = {id(mul): matmul for matmul, mul in added}
    nodes = [replacement.get(id(n), n) for n in graph.node if id(n) not in drop or id(n) in replacement]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    for init in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(init)
    return bytes(model.SerializeToString())
