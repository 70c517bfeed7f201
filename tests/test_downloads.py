"""A download of ImageNet weights never hangs: a server that accepts the connection and then says nothing."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from kagglekit import backbones as bb
from kagglekit.errors import WeightsError


@pytest.fixture()
def stalled_proxy():
    """Yield the URL of a proxy on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)  # kept open, never read from or written to
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


def test_imagenet_download_from_a_stalled_server_gives_up_with_the_file_to_attach(tmp_path, monkeypatch,
                                                                                   stalled_proxy):
    import keras.src.backend.config as keras_config

    # Keras' own cache is an empty folder here, whatever ~/.keras/models holds on this machine.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras-home"))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, stalled_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setattr(bb, "DOWNLOAD_TIMEOUT", 1.0)
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        bb.build_model("mobilenetv2", 2, weights="imagenet", roots=[tmp_path / "input"])
    # The bound only tells a hang from a timeout: the download gives up after 1 s of silence.
    assert time.monotonic() - start < 120
    message = str(info.value)
    assert bb.get("mobilenetv2").weights_file in message
    assert "weights=" in message
    assert "timed out" in message.lower() or "timeout" in message.lower(), message
