#!/usr/bin/python3
"""Train mlgate's bundled Iris classifier and write it as an ONNX model.

Run with Debian's python3 (python3-sklearn, python3-onnx); there is no skl2onnx
here, so the ONNX graph is written by hand with onnx.helper:

    features [batch, 4] float32
      -> Sub(mean) -> Div(scale)              StandardScaler
      -> Gemm(W [4, 3], b [3])                LogisticRegression logits
      -> Softmax(axis=1)                      multinomial probabilities
    probabilities [batch, 3] float32

Only ops that gonnx v1.1.0 implements are used (its opset 13 has Sub, Div,
Gemm and Softmax; it has no Exp, ReduceMax or ArgMax), and the opset import is
exactly 13 because gonnx resolves operators by the highest imported opset and
knows no other. The batch dimension is symbolic ("batch"), which gonnx treats
as dynamic.

Writes, next to this script: model.onnx, metadata.json, golden.json.
Everything is deterministic: re-running produces byte-identical files.
"""

import json
import os

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.basename(__file__)

OPSET = 13
SEED = 0
TEST_SIZE = 0.2

INPUT = "features"
OUTPUT = "probabilities"
FEATURE_NAMES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
LABELS = ["setosa", "versicolor", "virginica"]

# Rows whose class every reader can check by eye; the Go tests pin these.
NAMED_ROWS = [
    ([5.1, 3.5, 1.4, 0.2], "setosa"),
    ([6.4, 3.2, 4.5, 1.5], "versicolor"),
    ([6.3, 3.3, 6.0, 2.5], "virginica"),
]
# How many held-out rows to add to the golden set besides the named ones.
EXTRA_GOLDEN_ROWS = 12


def train():
    iris = load_iris()
    if list(iris.target_names) != LABELS:
        raise SystemExit(f"unexpected Iris labels {list(iris.target_names)}")
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=TEST_SIZE, random_state=SEED, stratify=iris.target
    )
    # lbfgs fits one multinomial (softmax) model over the three classes, which is
    # exactly what the Softmax node computes.
    pipeline = make_pipeline(
        StandardScaler(),
        LogisticRegression(solver="lbfgs", C=1.0, max_iter=1000, random_state=SEED),
    )
    pipeline.fit(x_train, y_train)
    accuracy = float(pipeline.score(x_test, y_test))
    return pipeline, x_test, accuracy


def build_graph(pipeline):
    scaler, logreg = pipeline[0], pipeline[1]
    mean = scaler.mean_.astype(np.float32)
    scale = scaler.scale_.astype(np.float32)
    weights = logreg.coef_.T.astype(np.float32)  # [4, 3], so Gemm needs no transB
    bias = logreg.intercept_.astype(np.float32)  # [3]
    n_features, n_labels = len(FEATURE_NAMES), len(LABELS)
    if weights.shape != (n_features, n_labels):
        raise SystemExit(f"unexpected coefficient shape {weights.shape}")

    initializers = [
        numpy_helper.from_array(mean, "scaler_mean"),
        numpy_helper.from_array(scale, "scaler_scale"),
        numpy_helper.from_array(weights, "logreg_weights"),
        numpy_helper.from_array(bias, "logreg_bias"),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT, "scaler_mean"], ["centered"], name="scaler_center"),
        helper.make_node("Div", ["centered", "scaler_scale"], ["scaled"], name="scaler_divide"),
        helper.make_node("Gemm", ["scaled", "logreg_weights", "logreg_bias"], ["logits"], name="logreg_linear"),
        helper.make_node("Softmax", ["logits"], [OUTPUT], name="logreg_softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "iris_logistic_regression",
        inputs=[helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_features])],
        outputs=[helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", n_labels])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="mlgate " + SCRIPT,
        producer_version="1",
        opset_imports=[helper.make_operatorsetid("", OPSET)],
    )
    model.ir_version = 8  # ONNX 1.12's IR; gonnx reads any IR that carries opset 13
    model.doc_string = "Iris species from four flower measurements (StandardScaler + multinomial LogisticRegression)."
    onnx.checker.check_model(model, full_check=True)
    return model, (mean, scale, weights, bias)


def graph_forward(params, x):
    """Evaluate the graph in numpy, in float32 like gonnx does."""
    mean, scale, weights, bias = params
    logits = ((x.astype(np.float32) - mean) / scale) @ weights + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def golden_rows(pipeline, x_test):
    rows = [features for features, _ in NAMED_ROWS]
    rows += [list(map(float, r)) for r in x_test[:EXTRA_GOLDEN_ROWS]]
    probabilities = pipeline.predict_proba(np.array(rows))
    golden = []
    for features, probs in zip(rows, probabilities):
        golden.append(
            {
                "features": [round(float(v), 6) for v in features],
                "probabilities": [float(p) for p in probs],
                "label": LABELS[int(np.argmax(probs))],
            }
        )
    for (features, want), row in zip(NAMED_ROWS, golden):
        if row["label"] != want:
            raise SystemExit(f"model calls {features} {row['label']}, want {want}")
    return golden


def write_json(name, value):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def write_json_rows(name, rows):
    """Write a JSON list with one row per line, so diffs show which row changed."""
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join("  " + json.dumps(row) for row in rows) + "\n]\n")


def main():
    pipeline, x_test, accuracy = train()
    model, params = build_graph(pipeline)

    # The hand-built graph must compute what sklearn computes.
    check = np.vstack([x_test, np.array([f for f, _ in NAMED_ROWS])])
    diff = np.abs(graph_forward(params, check) - pipeline.predict_proba(check)).max()
    if diff > 1e-5:
        raise SystemExit(f"graph disagrees with sklearn by {diff}")

    with open(os.path.join(HERE, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    write_json(
        "metadata.json",
        {
            "name": "iris",
            "version": "1",
            "description": "Iris species (setosa, versicolor, virginica) from sepal and petal "
            "length and width in centimetres; StandardScaler + multinomial logistic regression.",
            "format": "onnx",
            "file": "model.onnx",
            "input": INPUT,
            "output": OUTPUT,
            "feature_names": FEATURE_NAMES,
            "labels": LABELS,
            "training": {
                "script": SCRIPT,
                "sklearn_version": sklearn.__version__,
                "onnx_opset": OPSET,
                "dataset": "sklearn.datasets.load_iris (150 rows)",
                "test_size": TEST_SIZE,
                "random_state": SEED,
                "test_accuracy": round(accuracy, 4),
            },
        },
    )
    write_json_rows("golden.json", golden_rows(pipeline, x_test))
    print(f"wrote model.onnx, metadata.json, golden.json; held-out accuracy {accuracy:.4f}, graph max diff {diff:.2e}")


if __name__ == "__main__":
    main()
