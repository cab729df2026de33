"""The command's large outputs (a --json report of many files) arrive whole through a pipe."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_large_write_to_a_pipe_survives_signals_with_unbuffered_output() -> None:
    """PYTHONUNBUFFERED=1 and signals during the write: a plain sys.stdout.write lost all but 64 KB of 5 MB."""
    writer = (
        "import os, signal, sys, threading, time\n"
        "from binance_archive.cli.output import write_all\n"
        "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
        "def poke():\n"
        "    for _ in range(40):\n"
        "        time.sleep(0.02)\n"
        "        os.kill(os.getpid(), signal.SIGUSR1)\n"
        "threading.Thread(target=poke, daemon=True).start()\n"
        "time.sleep(0.05)\n"
        "write_all(sys.stdout, 'x' * 5_000_000 + '\\n')\n"
    )
    reader = "import sys, time\ntime.sleep(0.5)\nprint(len(sys.stdin.read()))\n"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    producer = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, env=env)
    counted = subprocess.run([sys.executable, "-c", reader], stdin=producer.stdout, capture_output=True, text=True)
    assert producer.stdout is not None
    producer.stdout.close()
    assert producer.wait() == 0
    assert counted.stdout.strip() == "5000001"
