"""Smoke test of an installed tailorset (the wheel, in a fresh venv outside the repository), run by that
venv's Python: the commands start, migrations run, the web UI and the captioner's model data are found in the
installed package, and a photo is uploaded, captioned exactly as on the suite's Python, and its caption PUT.

    python wheel_smoke.py PHOTO CAPTION_FILE [--reference]

PHOTO is scikit-image's chelsea.png. With --reference (the suite's Python, tailorset installed from the
repository) the caption is written to CAPTION_FILE; without, it must equal the one there. Prints each step's time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
started = time.monotonic()


def step(what: str) -> None:
    print(f"{time.monotonic() - started:6.1f} s  {what}", flush=True)


def main(photo: Path, caption_file: Path, reference: bool) -> None:
    import tailorset

    installed = Path(tailorset.__file__).resolve()
    if not reference:
        assert "site-packages" in installed.parts, f"tailorset comes from {installed}, not from the installed wheel"
    step(f"Python {sys.version.split()[0]}, tailorset from {installed.parent}")
    with tempfile.TemporaryDirectory() as data, socket.socket() as probe:
        env = {**os.environ, "TAILORSET_DATA_DIR": data}
        made = subprocess.run([BIN / "tailorset", "token", "create", "--org", "smoke"], env=env, cwd=data,
                              capture_output=True, text=True, check=True)  # fmt: skip
        token = made.stdout.strip().splitlines()[-1]
        step("token create: migrations found and applied")
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = subprocess.Popen([BIN / "tailorset", "serve", "--port", str(port), "--log-level", "warning"],
                                  env=env, cwd=data)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None, "tailorset serve exited"
                time.sleep(0.2)
            step("serve: ready")
            ui = httpx.get(f"{base}/ui/")
            assert ui.status_code == 200 and "/ui/static/app.js" in ui.text, ui.status_code
            assert httpx.get(f"{base}/ui/static/dataset.js").status_code == 200
            step("web UI found")
            with httpx.Client(base_url=f"{base}/tailored-gen", headers={"api_token": token}, timeout=120) as api:
                project = api.post("/projects", json={"project_name": "Smoke", "ip_medium": "photography",
                                                      "ip_type": "stylized_scene"}).json()  # fmt: skip
                dataset = api.post("/datasets", json={"project_id": project["id"], "name": "Smoke"}).json()
                api.put(f"/datasets/{dataset['id']}", json={"caption_prefix": "sks style"}).raise_for_status()
                image = api.post(
                    f"/datasets/{dataset['id']}/images", files={"file": ("chelsea.png", photo.read_bytes())}
                )
                assert image.status_code == 201, image.text
                caption = image.json()["caption"]
                if reference:
                    caption_file.write_text(caption)
                    step(f"upload: captioned {caption!r}")
                else:
                    assert caption == caption_file.read_text(), (caption, caption_file.read_text())
                    step("upload: captioned exactly as on the suite's Python (model data found)")
                url = f"/datasets/{dataset['id']}/images/{image.json()['id']}"
                edited = api.put(url, json={"caption": "sks style, a tabby cat"})
                assert edited.status_code == 200 and edited.json()["caption_source"] == "manual", edited.text
                step("caption PUT")
        finally:
            server.terminate()
            server.wait(timeout=30)
    step("smoke test passed")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), "--reference" in sys.argv[3:])
