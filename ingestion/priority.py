"""Ingest runs below chat: its threads get a higher nice value, so the kernel gives the CPU to answers first.

On Linux the nice value belongs to a thread, and threads inherit it from the thread that starts them. The app's
re-ingest runs in a fresh thread that lowers itself before it touches a model, so the OpenMP team PyTorch starts
for that thread (libgomp keeps one per calling thread) is below chat too, while the answering threads of the same
process keep their priority. Pools made once per process (OpenVINO's TBB workers, the tokenizers' threads) keep
the priority of whichever thread started them. `assistant ingest` is all ingest: it lowers every thread of its
process. A nice-19 thread gets about 1.5% of a core beside a busy nice-0 one (the kernel's weights 15 and 1024).

Nice values rank threads within one scheduling group: with autogroup scheduling (a session per terminal) or
cgroups (a systemd unit, a container), a CLI in another group competes with the app as a peer; give it a low
CPU weight there (`systemd-run --property=CPUWeight=1 ...`). Other systems: nothing is changed (macOS applies a
nice value to the whole process, which would slow the app's answers too). A kernel that refuses the call (a
sandbox's seccomp filter) leaves the priority as it is.
"""

from __future__ import annotations

import os
import sys
import threading

LINUX = sys.platform.startswith("linux")


def lower_this_thread(nice: int) -> None:
    """Raise the calling thread's nice value to `nice` (never lowers it; 0 changes nothing)."""
    if LINUX and nice > 0:
        _renice(threading.get_native_id(), nice)


def lower_this_process(nice: int) -> None:
    """Raise the nice value of every thread of this process, and of those it starts later (the CLI)."""
    if not (LINUX and nice > 0):
        return
    for tid in os.listdir("/proc/self/task"):
        _renice(int(tid), nice)


def _renice(tid: int, nice: int) -> None:
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)  # raising one's own nice value needs no privilege
    except OSError:  # a thread that ended since it was listed, or a sandbox that refuses: ingest runs as it is
        pass
