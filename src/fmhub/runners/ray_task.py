"""The body of a ``ray`` job on a cluster node: one Ray task that runs the job's normal entry point
(``python -m fmhub jobs execute ID``) as a subprocess and returns its exit code.

This module runs inside a Ray worker (it is imported there by name, so fmhub must be installed
on every node of the cluster). It never imports ``ray`` at module level.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from fmhub.runners.local import PARENT_PID_ENV, _die_with_parent

PLACEMENT_ENV = "FMHUB_RAY_PLACEMENT"
"""Set in a job process started on a Ray node: JSON ``{launch, node_id, node_ip, host,
ray_worker_pid}`` (see :func:`fmhub.services.job_exec.run_job_process`)."""

STOP_WAIT_S = 20.0
"""Seconds the task waits for its job process to end after a SIGTERM (a graceful cancel) before
it kills it."""

WAIT_TICK_S = 0.5
"""Seconds between two looks at the job process; a graceful ``ray.cancel`` lands between them."""


def _node() -> dict[str, Any]:
    """The node this task runs on: Ray node id, IP and host name."""
    import socket

    import ray

    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "host": socket.gethostname(), "ray_worker_pid": os.getpid()}


def run_job_task(job_id: str, log_path: str, env: dict[str, str], launch: str) -> int:
    """Run job ``job_id`` as a subprocess of this Ray worker and return its exit code.

    Args:
        job_id: The job (marked ``running`` by its scheduler).
        log_path: The job's log file on this node (created when missing; output appended).
        env: Variables added to this node's environment for the job process (the scheduler's
            ``FMHUB_*`` settings, ``AWS_*`` credentials).
        launch: Id of this start of the job by its scheduler. The job process gets it, with the
            node, in :data:`PLACEMENT_ENV`; it records a ``placed`` event, and when it finds one of
            the same launch already (Ray retried the task after its worker or node was lost), it
            resumes from the job's last checkpoint.

    Returns:
        The job process's exit code (negative: killed by that signal).

    Raises:
        KeyboardInterrupt: a graceful ``ray.cancel``; the job process was sent SIGTERM first (it
            checkpoints and records itself canceled) and waited for up to :data:`STOP_WAIT_S`.
    """
    import json

    node = _node()
    placement = {"launch": launch, **node}
    full_env = {**os.environ, **env, PARENT_PID_ENV: str(os.getpid()), PLACEMENT_ENV: json.dumps(placement)}
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "fmhub", "jobs", "execute", job_id]
    with path.open("ab") as log:
        log.write(f"-- fmhub: job {job_id} on Ray node {node['node_ip']} ({node['node_id'][:12]})\n".encode())
        log.flush()
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=full_env, preexec_fn=_die_with_parent, close_fds=True,
                                 start_new_session=True)
    try:
        while True:
            try:
                return popen.wait(timeout=WAIT_TICK_S)  # a Python-level wait: a cancel can land
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:  # ray.cancel(ref): stop the job as a SIGTERM stops a local one
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        raise
    finally:
        if popen.poll() is None:  # any other way out: the job process never outlives its task
            popen.kill()


__all__ = ["run_job_task"]
