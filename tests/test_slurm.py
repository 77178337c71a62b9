"""A real SLURM runs a sweep: munged, slurmctld and slurmd on localhost (one node,
generated slurm.conf, state under a temporary directory), a 4-task sweep of the
mini network submitted as a job array with a dependent report job. Run by
``make test-slurm``; it installs Debian's slurm-wlm and munge when root on
Debian and they are missing, and skips with one line where it cannot."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipeline.preprocess import preprocess
from pipeline.data.synthetic import make_dataset
from tests.conftest import ROOT

pytestmark = pytest.mark.slurm
DAEMONS = ("munged", "slurmctld", "slurmd")


def ensure_installed():
    if all(shutil.which(d) for d in DAEMONS + ("sbatch",)):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("slurm-wlm/munge missing and cannot apt-get them (not root on Debian)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip("cannot install slurm-wlm and munge: %s" % done.stderr.strip()[-200:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(d, host):
    return "\n".join([
        "ClusterName=drt-test", "SlurmctldHost=%s(127.0.0.1)" % host,
        "SlurmUser=root", "SlurmdUser=root",
        "SlurmctldPort=%d" % free_port(), "SlurmdPort=%d" % free_port(),
        "AuthType=auth/munge", "CredType=cred/munge", "AuthInfo=socket=%s/munge.sock" % d,
        "StateSaveLocation=%s/state" % d, "SlurmdSpoolDir=%s/spool" % d,
        "SlurmctldPidFile=%s/slurmctld.pid" % d, "SlurmdPidFile=%s/slurmd.pid" % d,
        "SlurmctldLogFile=%s/slurmctld.log" % d, "SlurmdLogFile=%s/slurmd.log" % d,
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/backfill", "ReturnToService=2", "MpiDefault=none",
        "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "NodeName=%s NodeAddr=127.0.0.1 CPUs=%d RealMemory=4000 State=UNKNOWN"
        % (host, os.cpu_count() or 1),
        "PartitionName=test Nodes=%s Default=YES MaxTime=INFINITE State=UP" % host, ""])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """SLURM_CONF of a one-node cluster started here; its daemons stopped (by pid) after."""
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root")
    ensure_installed()
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (d / sub).mkdir()
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (d / "slurm.conf").write_text(slurm_conf(d, socket.gethostname()))
    env = dict(os.environ, SLURM_CONF=str(d / "slurm.conf"))
    pids = []
    try:
        for command in (["munged", "--force", "--socket=%s/munge.sock" % d,
                         "--key-file=%s" % key, "--pid-file=%s/munged.pid" % d,
                         "--log-file=%s/munged.log" % d, "--seed-file=%s/munged.seed" % d],
                        ["slurmctld", "-f", str(d / "slurm.conf")],
                        ["slurmd", "-f", str(d / "slurm.conf")]):
            subprocess.run(command, env=env, check=True)
            pid_file = d / ("%s.pid" % os.path.basename(command[0]))
            for _ in range(100):
                if pid_file.exists() and pid_file.read_text().strip():
                    break
                time.sleep(0.1)
            pids.append(int(pid_file.read_text()))
        deadline = time.time() + 60
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env,
                                           capture_output=True, text=True).stdout:
            assert time.time() < deadline, (d / "slurmd.log").read_text()[-2000:]
            time.sleep(0.5)
        yield env
    finally:
        for pid in reversed(pids):  # only the daemons this fixture started
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def job_state(env, job):
    out = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True,
                         text=True).stdout
    return next((w.split("=", 1)[1] for w in out.split() if w.startswith("JobState=")), "GONE")


def test_a_sweep_runs_as_a_job_array_and_reports(cluster, tmp_path):
    make_dataset(str(tmp_path / "raw"), patients=24, width=300, height=200, seed=5)
    data = tmp_path / "data.h5"
    preprocess(str(tmp_path / "raw"), str(data), size=72, progress=False)
    runs = tmp_path / "sweep"
    mini = ["network=mini", "crop=64", "init=random", "epochs=2", "batch_size=8"]
    plan = [sys.executable, "-m", "pipeline", "sweep", "plan", "--runs", str(runs),
            "--scenarios", "4 scratch", "--seeds", "0,1", "--data", str(data), "--cpus", "1",
            "--mem", "1G", "--time", "00:20:00"] + [a for m in mini for a in ("--set", m)]
    subprocess.run(plan, cwd=str(ROOT), check=True, env=cluster)
    # tasks reuse this machine's warm compile cache (one node, local disk)
    env = dict(cluster, DRT_CACHE=os.environ.get(
        "DRT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "dr-transfer")))
    submit = subprocess.run([sys.executable, "-m", "pipeline", "sweep", "submit", "--runs",
                             str(runs)], cwd=str(ROOT), env=env, capture_output=True, text=True)
    assert submit.returncode == 0, submit.stderr
    assert "watch: squeue -j" in submit.stdout
    jobs = json.loads((runs / "jobs.json").read_text())
    deadline = time.time() + 900
    while job_state(cluster, jobs["finish"]) in ("PENDING", "RUNNING", "CONFIGURING"):
        assert time.time() < deadline, "the sweep did not finish in 15 minutes"
        time.sleep(2)
    logs = "\n".join(p.read_text()[-1500:] for p in sorted((runs / "logs").iterdir()))
    assert job_state(cluster, jobs["finish"]) in ("COMPLETED", "GONE"), logs
    names = ["4-seed0", "4-seed1", "scratch-seed0", "scratch-seed1"]
    assert all((runs / n / "DONE").exists() for n in names), logs
    md = (runs / "report-data.md").read_text()
    assert "4 runs evaluated on this data" in md and all(n in md for n in names)
    assert "| 4 vs scratch | ΔAUC" in md
