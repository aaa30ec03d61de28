"""Spawning a subprocess (ffmpeg, per session) while another thread is in a BLAS call must not
freeze the process: see lifecycle.make_fork_safe. Run in a child interpreter, so that a hang
fails this test by its timeout instead of hanging pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import ROOT, run_isolated

SCRIPT = """
import asyncio, sys, threading
import numpy as np
import uvloop
from wirescribe.api.lifecycle import make_fork_safe

assert make_fork_safe()
stop = False
products = 0

def blas():  # the size of faster-whisper's mel filterbank product, over and over
    global products
    a = np.random.rand(80, 201).astype(np.float32)
    b = np.random.rand(201, 3000).astype(np.float32)
    while not stop:
        a @ b
        products += 1

async def spawn(n):
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

threading.Thread(target=blas, daemon=True).start()
uvloop.run(spawn(300))  # uvloop forks (running fork handlers), as under uvicorn
stop = True
print("ok", products)
"""


def test_spawning_beside_a_blas_call_does_not_hang() -> None:
    pytest.importorskip("uvloop")
    pytest.importorskip("threadpoolctl")
    done = run_isolated(
        SCRIPT, "spawning subprocesses beside a BLAS call hung (OpenBLAS fork handler deadlock)"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok")


def test_make_fork_safe_limits_openblas_to_one_thread() -> None:
    pytest.importorskip("threadpoolctl")
    code = (
        "import numpy, threadpoolctl; "
        "from wirescribe.api.lifecycle import make_fork_safe; make_fork_safe(); "
        "print([i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() in ("[1]", "[]"), out.stdout  # []: a numpy without OpenBLAS
