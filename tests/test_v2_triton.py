"""NVIDIA's tritonclient, unmodified, against the real gunicorn server's V2 routes.

A third-party client is the proof that the protocol is spoken as others speak
it: its own URL building, its own JSON (and no Content-Type header at all),
its own parsing of our replies.
"""
import shutil

import numpy as np
import pytest

from tests.helpers import COMMITTED_MODEL
from tests.live_server import LiveServer

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is in the test extra")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]
N_DIGITS = 320
AUTH = {"Authorization": "Bearer triton-key"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("triton")
    shutil.copytree(COMMITTED_MODEL, root / "models" / "mnist" / "1")
    with LiveServer(root / "models", root, workers=2, api_key="triton-key") as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    c = httpclient.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30)
    yield c
    c.close()


def test_health_and_server_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("mnist")
    # a versioned readiness check may load that version from disk: with API_KEY set it needs the key
    assert client.is_model_ready("mnist", "1", headers=AUTH)
    assert not client.is_model_ready("mnist", "1")
    assert not client.is_model_ready("mnist", "9", headers=AUTH)
    assert not client.is_model_ready("other")
    assert client.get_server_metadata() == {"name": "mnist-serving", "version": "0.1.0",
                                            "extensions": ["binary_tensor_data"]}


def test_model_metadata(client):
    meta = client.get_model_metadata("mnist", headers=AUTH)
    assert meta["name"] == "mnist" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 784]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == \
        [("probabilities", "FP32", [-1, 10]), ("label", "INT64", [-1])]
    assert client.get_model_metadata("mnist", "1", headers=AUTH)["name"] == "mnist"


def infer_batch(client, x, version="", headers=AUTH, **kwargs):
    image = httpclient.InferInput("image", list(x.shape), "FP32")
    image.set_data_from_numpy(x, binary_data=False)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in ("label", "probabilities")]
    return client.infer("mnist", [image], model_version=version, outputs=outputs, headers=headers, **kwargs)


def test_labels_of_real_mnist_digits(client, mnist_test):
    images, labels = mnist_test
    x = images[:N_DIGITS].reshape(N_DIGITS, 784).astype(np.float32) / 255
    predicted, calls = [], 0
    for start in range(0, N_DIGITS, 64):
        result = infer_batch(client, x[start:start + 64], request_id=f"batch-{start}")
        calls += 1
        assert result.get_response()["id"] == f"batch-{start}"
        assert result.get_response()["model_version"] == "1"
        p = result.as_numpy("probabilities")
        assert p.shape == (len(x[start:start + 64]), 10) and p.dtype == np.float32
        assert np.allclose(p.sum(axis=1), 1, atol=1e-4)
        predicted.append(result.as_numpy("label"))
    assert calls == N_DIGITS // 64
    accuracy = np.mean(np.concatenate(predicted) == labels[:N_DIGITS])
    print(f"\ntritonclient: {accuracy:.2%} of {N_DIGITS} MNIST test digits labelled right")
    assert accuracy >= 0.98


def test_a_named_version_and_a_single_output(client, mnist_test):
    images, labels = mnist_test
    x = images[:8].reshape(8, 784).astype(np.float32) / 255
    image = httpclient.InferInput("image", [8, 784], "FP32")
    image.set_data_from_numpy(x, binary_data=False)
    result = client.infer("mnist", [image], model_version="1", headers=AUTH,
                          outputs=[httpclient.InferRequestedOutput("label", binary_data=False)])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert result.as_numpy("probabilities") is None
    assert (result.as_numpy("label") == labels[:8]).mean() >= 0.875


def test_client_defaults_binary_tensors_both_ways(client, mnist_test):
    """tritonclient's defaults: the input as raw bytes, and every output asked for in binary."""
    images, labels = mnist_test
    x = images[:N_DIGITS].reshape(N_DIGITS, 784)
    fp32 = httpclient.InferInput("image", [64, 784], "FP32")
    fp32.set_data_from_numpy(x[:64].astype(np.float32) / 255)
    result = client.infer("mnist", [fp32], headers=AUTH)
    assert all("parameters" in o and "data" not in o for o in result.get_response()["outputs"])
    assert (result.as_numpy("label") == labels[:64]).mean() >= 0.98
    assert result.as_numpy("probabilities").shape == (64, 10)
    predicted = []
    for start in range(0, N_DIGITS, 64):
        uint8 = httpclient.InferInput("image", [64, 28, 28], "UINT8")
        uint8.set_data_from_numpy(images[start:start + 64])
        predicted.append(client.infer("mnist", [uint8], headers=AUTH).as_numpy("label"))
    assert (np.concatenate(predicted) == labels[:N_DIGITS]).mean() >= 0.98


def test_errors_reach_the_client_as_its_exceptions(client):
    x = np.zeros((1, 784), np.float32)
    with pytest.raises(InferenceServerException, match="unknown model 'other'"):
        image = httpclient.InferInput("image", [1, 784], "FP32")
        image.set_data_from_numpy(x, binary_data=False)
        client.infer("other", [image], headers=AUTH)
    with pytest.raises(InferenceServerException, match="API key required"):
        infer_batch(client, x, headers=None)
    with pytest.raises(InferenceServerException, match=r"shape must be \[n, 784\]"):
        image = httpclient.InferInput("image", [1, 783], "FP32")
        image.set_data_from_numpy(x[:, :783], binary_data=True)
        client.infer("mnist", [image], headers=AUTH)
    assert client.is_server_ready()  # and the server keeps serving
