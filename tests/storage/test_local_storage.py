"""The local-filesystem backend: whole objects or nothing, and no debris a delete cannot reach."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import anyio

from tailorset.storage import LocalStorage


def test_put_get_delete(tmp_path):
    async def scenario():
        storage = LocalStorage(tmp_path)
        await storage.put("images/ab/one.png", b"png bytes", "image/png")
        assert await storage.get("images/ab/one.png") == b"png bytes"
        assert [key async for key in storage.keys()] == ["images/ab/one.png"]  # noqa: SIM118
        await storage.delete("images/ab/one.png")
        assert not await storage.exists("images/ab/one.png")

    anyio.run(scenario)


def test_deleting_a_key_removes_what_a_killed_writer_left(tmp_path):
    """A writer killed mid-put leaves a partial file; deleting the key it was writing removes it (that is how a
    resumed job cleans up after a dead worker), and a listing never shows it as an object."""
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, time, anyio
            from tailorset.storage import LocalStorage
            def killed_before_the_rename(src, dst):
                print("writing", flush=True)
                time.sleep(600)
            os.replace = killed_before_the_rename
            anyio.run(LocalStorage({str(tmp_path)!r}).put, "images/cd/two.png", b"an image", "image/png")
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert [p.name for p in (tmp_path / "images" / "cd").iterdir()] == [".tmp-two.png"]

    async def clean_up():
        storage = LocalStorage(tmp_path)
        assert [key async for key in storage.keys()] == []  # noqa: SIM118
        await storage.delete("images/cd/two.png")

    anyio.run(clean_up)
    assert list((tmp_path / "images" / "cd").iterdir()) == []
