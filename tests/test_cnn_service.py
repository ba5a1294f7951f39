"""The service serving convolutional versions: /predict, V2, pinning, and hot swaps between an MLP and a CNN."""
import json
import shutil

import numpy as np
import pytest

from neuralnet.model_io import load_version
from service import create_app
from service.decode import decode_image
from service.preprocess import to_mnist
from service.state import state
from tests.helpers import png, tiny_cnn, tiny_network, write_version


def v2_probabilities(client, pixels, version=None):
    path = f"/v2/models/mnist/versions/{version}/infer" if version else "/v2/models/mnist/infer"
    body = {"inputs": [{"name": "image", "shape": [len(pixels), 784], "datatype": "UINT8",
                        "data": pixels.reshape(-1).tolist()}]}
    r = client.post(path, data=json.dumps(body))
    assert r.status_code == 200, r.get_json()
    out = {o["name"]: o for o in r.get_json()["outputs"]}["probabilities"]
    return r.get_json()["model_version"], np.array(out["data"]).reshape(out["shape"])


@pytest.fixture
def pixels():
    return np.random.default_rng(4).integers(0, 256, (3, 784), dtype=np.uint8)


def served_by(client):
    return client.get("/health").get_json()["model"]["version"]


def service(store, **config):
    """An app over ``store`` that rescans only when told to, and its test client."""
    app = create_app({"models_dir": store, "reload_interval": 0, "access_log": False, **config})
    return app, app.test_client()


def rescan(app):
    """What the reload timer does every RELOAD_INTERVAL seconds."""
    with app.app_context():
        state().store.refresh()


def test_v2_serves_a_cnn_version_with_its_own_outputs(tmp_path, pixels):
    store = tmp_path / "models"
    write_version(store, tiny_network())
    cnn_path = write_version(store, tiny_cnn())
    _, client = service(store)
    version, probabilities = v2_probabilities(client, pixels)
    expected = tiny_cnn().forward(pixels.astype(np.float32) / 255)
    assert version == "2"
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert load_version(cnn_path)[1]["architecture"]["layers"][1]["type"] == "conv2d"


def test_predict_answers_with_the_cnn_and_a_pinned_service_keeps_the_mlp(tmp_path):
    store = tmp_path / "models"
    write_version(store, tiny_network())
    write_version(store, tiny_cnn())
    image = np.pad(np.full((12, 4), 255, np.uint8), ((8, 8), (12, 12)))
    x = to_mnist(decode_image(png(image), max_pixels=10**6))[None]  # what the service feeds the network
    for pin, network in ((None, tiny_cnn()), ("1", tiny_network())):
        _, client = service(store, model_version=pin or "latest")
        r = client.post("/predict", data=png(image), content_type="image/png")
        assert r.status_code == 200
        body = r.get_json()
        expected = network.forward(x)[0]
        assert body["model"]["version"] == (pin or "2") == served_by(client)
        (prediction,) = body["predictions"]
        assert prediction["digit"] == int(np.argmax(expected))
        np.testing.assert_allclose(prediction["probabilities"], expected, atol=1e-5)


def test_hot_swap_from_mlp_to_cnn_and_back(tmp_path, pixels):
    store = tmp_path / "models"
    write_version(store, tiny_network())
    app, client = service(store)
    mlp_out = tiny_network().forward(pixels.astype(np.float32) / 255)
    cnn_out = tiny_cnn().forward(pixels.astype(np.float32) / 255)

    version, p = v2_probabilities(client, pixels)
    assert version == "1"
    np.testing.assert_allclose(p, mlp_out, rtol=1e-5, atol=1e-6)

    cnn = write_version(store, tiny_cnn())  # the trainer writes a CNN
    rescan(app)
    version, p = v2_probabilities(client, pixels)
    assert version == "2"
    np.testing.assert_allclose(p, cnn_out, rtol=1e-5, atol=1e-6)

    shutil.rmtree(cnn)  # withdrawn: back to the MLP
    rescan(app)
    version, p = v2_probabilities(client, pixels)
    assert version == "1"
    np.testing.assert_allclose(p, mlp_out, rtol=1e-5, atol=1e-6)

    write_version(store, tiny_cnn(seed=1))
    write_version(store, tiny_network(seed=2))  # and an MLP released after a CNN replaces it
    rescan(app)
    version, p = v2_probabilities(client, pixels)
    assert version == "3"
    np.testing.assert_allclose(p, tiny_network(seed=2).forward(pixels.astype(np.float32) / 255), rtol=1e-5, atol=1e-6)


def test_a_corrupt_cnn_version_is_refused_and_the_mlp_keeps_serving(tmp_path, pixels):
    store = tmp_path / "models"
    write_version(store, tiny_network())
    app, client = service(store)
    cnn = write_version(store, tiny_cnn())
    card = json.loads((cnn / "model.json").read_text())
    card["architecture"]["layers"][2]["size"] = 4  # pooling changed: shapes after it no longer fit
    (cnn / "model.json").write_text(json.dumps(card))
    rescan(app)
    version, _ = v2_probabilities(client, pixels)
    health = client.get("/health").get_json()
    assert version == "1"
    assert [r["version"] for r in health["rejected_versions"]] == ["2"]
    assert "W2 has shape" in health["rejected_versions"][0]["reason"]
