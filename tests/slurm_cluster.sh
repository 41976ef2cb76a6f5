#!/bin/bash
# A one-node Slurm cluster for the `cluster` test suite, in a folder of its own:
#   slurm_cluster.sh start DIR   -> starts munged (if not running), slurmctld and slurmd; prints SLURM_CONF
#   slurm_cluster.sh stop DIR    -> stops the daemons it started, by the pids it recorded in DIR
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (packaging/bootstrap.sh installs them).
set -euo pipefail
action=${1:?start or stop}
dir=$(realpath -m "${2:?a folder for the cluster}")

stop_pid() {
    local file=$1
    [ -f "$file" ] || return 0
    local pid
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

case $action in
start)
    [ "$(id -u)" = 0 ] || { echo "slurm_cluster.sh: the test cluster needs root" >&2; exit 1; }
    for p in slurmctld slurmd sbatch squeue scancel munged; do
        command -v "$p" >/dev/null || { echo "slurm_cluster.sh: $p is missing (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 1; }
    done
    mkdir -p "$dir"/{state,spool,log}
    if ! pgrep -x munged >/dev/null; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        chown -R munge:munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
        [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
        su -s /bin/sh munge -c "munged --force"
        pgrep -xo munged > "$dir/munged.pid"
    fi
    host=$(hostname -s)
    cat > "$dir/slurm.conf" <<CONF
ClusterName=phatgoose-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 100); do
        if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then echo "$SLURM_CONF"; exit 0; fi
        sleep 0.2
    done
    echo "slurm_cluster.sh: the node did not come up; see $dir/log" >&2
    exit 1
    ;;
stop)
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munged.pid"
    ;;
*)
    echo "usage: slurm_cluster.sh start|stop DIR" >&2
    exit 2
    ;;
esac
