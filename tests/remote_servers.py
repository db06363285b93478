"""Real remote services for the remote tests: OpenSSH sshd, and single-node Slurm behind it.

Everything lives in one temp directory, on free loopback ports, started from Debian's
binaries (`make test` installs them) and stopped by PID. Slurm runs with its accounting:
munged, MariaDB, slurmdbd, slurmctld and slurmd, so `sacct` answers as on a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SBIN = Path("/usr/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} did not listen on {port}:\n{log.read_text()}")
        time.sleep(0.05)


@dataclass
class Daemons:
    """Processes started for a test session, stopped in reverse order by PID."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Sshd:
    port: int
    pid: int
    client_key: Path
    known_hosts: Path
    log: Path
    root: Path

    def machine(self, **extra: object) -> dict[str, object]:
        """A `[machines.NAME]` table reaching this sshd as the current user."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "client_keys": [str(self.client_key)],
            "known_hosts": str(self.known_hosts),
            "connect_timeout": 5,
            **extra,
        }

    def sessions(self) -> int:
        """Command sessions sshd started so far (one per command a client ran)."""
        return self.log.read_text(errors="replace").count("Starting session: command")

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(stat[1]) == self.pid and stat[0] != "Z":
                        pids.append(int(entry.name))
        return pids


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "taskd-test", "-f", str(path)],
        check=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def start_sshd(daemons: Daemons, root: Path, env: dict[str, str]) -> Sshd:
    """sshd for the current user, with a generated host key, client key and known_hosts."""
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege-separation dir
    host_pub = keygen(root / "host_key")
    client_pub = keygen(root / "client_key")
    (root / "authorized_keys").write_text(client_pub + "\n")
    port = free_port()
    known = " ".join(host_pub.split()[:2])
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {known}\n")
    settings = [
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'host_key'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "LogLevel VERBOSE",
        "MaxSessions 10",  # sshd's default: what a real login node allows
        "MaxStartups 64",
        "Subsystem sftp internal-sftp",
        # sshd passes no client environment: the Slurm commands find their config this way.
        *(f"SetEnv {name}={value}" for name, value in env.items()),
    ]
    config = root / "sshd_config"
    config.write_text("\n".join(settings) + "\n")
    log = root / "sshd.log"
    process = daemons.start(
        [str(SBIN / "sshd"), "-D", "-e", "-f", str(config), "-p", str(port)], log
    )
    wait_port(port, process, log)
    return Sshd(port, process.pid, root / "client_key", root / "known_hosts", log, root)


@dataclass(frozen=True)
class Slurm:
    conf: Path
    env: dict[str, str]

    def run(self, *argv: str) -> str:
        return subprocess.run(
            argv, env={**os.environ, **self.env}, check=True, capture_output=True, text=True
        ).stdout


def start_slurm(daemons: Daemons, root: Path) -> Slurm:
    """munged, MariaDB, slurmdbd, slurmctld and slurmd: one node, `debug` partition."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 (munged and slurmd, other users, read through it)
    munge = root / "munge"
    munge.mkdir(mode=0o755)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = munge / "munge.sock"
    log = root / "munged.log"
    daemons.start(
        [
            str(SBIN / "munged"),
            "-F",
            "--force",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'seed'}",
            f"--log-file={log}",
        ],
        root / "munged.out",
    )
    wait_file(socket_path, log)

    mysql_port, dbd_port, ctld_port, slurmd_port = (free_port() for _ in range(4))
    data = root / "mysql"
    subprocess.run(
        [
            "mariadb-install-db",
            "--user=root",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    log = root / "mariadb.log"
    mysql = daemons.start(
        [
            str(SBIN / "mariadbd"),
            "--no-defaults",
            "--user=root",
            f"--datadir={data}",
            f"--socket={root / 'mysql.sock'}",
            f"--pid-file={root / 'mysql.pid'}",
            "--bind-address=127.0.0.1",
            f"--port={mysql_port}",
            "--skip-grant-tables",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
        ],
        log,
    )
    wait_port(mysql_port, mysql, log)

    common = {"munge": socket_path}
    dbd_conf = root / "slurmdbd.conf"
    dbd_conf.write_text(
        "\n".join(
            [
                "AuthType=auth/munge",
                f"AuthInfo=socket={common['munge']}",
                "DbdHost=localhost",
                "DbdAddr=127.0.0.1",
                f"DbdPort={dbd_port}",
                "SlurmUser=root",
                f"LogFile={root / 'slurmdbd.log'}",
                f"PidFile={root / 'slurmdbd.pid'}",
                "StorageType=accounting_storage/mysql",
                "StorageHost=127.0.0.1",
                f"StoragePort={mysql_port}",
                "StorageUser=root",
                "StorageLoc=slurm_acct_db",
            ]
        )
        + "\n"
    )
    dbd_conf.chmod(0o600)
    cpus = 24  # more than the cores: the tests run many short jobs at once
    memory = 4096
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=taskd",
                f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={slurmd_port}",
                "AuthType=auth/munge",
                f"AuthInfo=socket={socket_path}",
                "CredType=cred/munge",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MpiDefault=none",
                "SlurmdParameters=config_overrides",
                "ReturnToService=2",
                "SchedulerParameters=sched_interval=1",
                "MinJobAge=30",
                "KillWait=2",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'slurmd.log'}",
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={dbd_port}",
                f"AccountingStoragePass={socket_path}",
                f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory}",
                "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            ]
        )
        + "\n"
    )
    for directory in ("state", "spool"):
        (root / directory).mkdir()
    env = {"SLURM_CONF": str(conf)}
    full_env = {**os.environ, **env}
    log = root / "slurmdbd.out"
    dbd = daemons.start(
        [str(SBIN / "slurmdbd"), "-D"], log, env={**full_env, "SLURM_CONF": str(conf)}
    )
    # slurmdbd reads its own file next to slurm.conf.
    wait_port(dbd_port, dbd, root / "slurmdbd.log", timeout=60)
    subprocess.run(
        ["sacctmgr", "-i", "add", "cluster", "taskd"], env=full_env, check=True, capture_output=True
    )
    ctld = daemons.start(
        [str(SBIN / "slurmctld"), "-D", "-i", "-f", str(conf)], root / "slurmctld.out", env=full_env
    )
    wait_port(ctld_port, ctld, root / "slurmctld.log")
    daemons.start(
        [str(SBIN / "slurmd"), "-D", "-N", "localhost", "-f", str(conf)],
        root / "slurmd.out",
        env=full_env,
    )
    slurm = Slurm(conf, env)
    deadline = time.monotonic() + 30
    while "idle" not in slurm.run("sinfo", "-h", "-o", "%T"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the Slurm node did not become idle:\n{(root / 'slurmctld.log').read_text()}"
            )
        time.sleep(0.2)
    return slurm


def wait_file(path: Path, log: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear:\n{log.read_text() if log.exists() else ''}")
        time.sleep(0.05)


@contextlib.contextmanager
def remote_services(root: Path) -> Iterator[tuple[Sshd, Slurm]]:
    daemons = Daemons()
    try:
        slurm = start_slurm(daemons, root / "slurm")
        sshd = start_sshd(daemons, root / "sshd", slurm.env)
        yield sshd, slurm
    finally:
        daemons.stop()
