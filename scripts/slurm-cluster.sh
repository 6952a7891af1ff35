#!/usr/bin/env bash
# Throwaway single-node Slurm cluster living entirely inside one scratch dir.
#   slurm-cluster.sh start <dir>   -> generate munge key + slurm.conf, start munged,
#                                     slurmctld, slurmd; wait until node is idle.
#   slurm-cluster.sh stop  <dir>   -> cancel jobs, SIGTERM daemons by PID, wait, SIGKILL fallback.
# After start:  export SLURM_CONF=<dir>/etc/slurm.conf   (see <dir>/env.sh)
# Must run as root (slurmd needs it; SlurmUser=root).
set -euo pipefail

log() { echo "[slurm-cluster] $*" >&2; }
now() { date +%s.%N; }

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Runs "$@" with every inherited descriptor above 2 closed and default SIGTERM/SIGINT: a
# daemon must not keep its starter's pipes or sockets open (a parent that waits for them
# would wait for the daemon), nor inherit an ignored SIGTERM (it could not be stopped).
# Call it in a subshell of its own, `(detached cmd …) &`, so that `$!` is the daemon's PID.
detached() {
  local fd
  for fd in /proc/self/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  trap - TERM INT
  exec "$@"
}

# wait_for <timeout-seconds> <description> <command...>   (polls every 0.1s)
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "timeout waiting for $what"; return 1; fi
    sleep 0.1
  done
}

start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  local t0; t0=$(now)
  local f
  for f in "$dir"/run/*.pid*; do
    [ -s "$f" ] && alive "$(cat "$f")" && { log "daemon from $f still running; run stop first"; return 3; }
  done
  # fresh cluster every time: drop state of a previous run in the same dir
  # (otherwise job ids continue and old jobs/node state are recovered)
  rm -rf "$dir/state" "$dir/spool" "$dir/run" "$dir/munge"
  # munged refuses group/other-WRITABLE dirs on the path of key/socket/log, and
  # requires the socket dir (and every parent) to be EXECUTABLE by all
  # ("Socket is inaccessible: execute permissions for all required").
  # mktemp -d gives 0700 -> use 0755 (parent /tmp is 1777+sticky, accepted).
  chmod 0755 "$dir"
  mkdir -p -m 0755 "$dir/etc" "$dir/munge" "$dir/log" "$dir/run" "$dir/state" "$dir/spool"

  # ---- munge ----
  local key="$dir/munge/munge.key" sock="$dir/munge/munge.socket"
  # AF_UNIX path limit (sun_path is 108 bytes incl. NUL)
  [ ${#sock} -lt 108 ] || { log "scratch dir path too long for a unix socket: $sock"; return 1; }
  dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
  chmod 0400 "$key"
  (detached munged --key-file="$key" --socket="$sock" \
         --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
         --seed-file="$dir/munge/munged.seed" --num-threads=2)
  # munged daemonizes itself; the parent only returns once the daemon is ready
  # and the pid file is written.
  wait_for 10 "munged pid file" test -s "$dir/munge/munged.pid"
  cp "$dir/munge/munged.pid" "$dir/run/munged.pid"
  wait_for 10 "munge socket" test -S "$sock"

  # ---- slurm.conf ----
  local host cpus ctld_port d_port
  host=$(hostname -s)
  cpus=$(nproc)
  ctld_port=$(free_port); d_port=$(free_port)
  while [ "$d_port" = "$ctld_port" ]; do d_port=$(free_port); done
  cat > "$dir/etc/slurm.conf" <<CONF
ClusterName=slurmtest
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${sock}
CredType=cred/munge
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/run/slurmctld.pid
SlurmdPidFile=${dir}/run/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=${dir}/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
ReturnToService=2
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=${SCHED_PARAMS:-batch_sched_delay=0}
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
WaitTime=0
NodeName=${host} NodeAddr=127.0.0.1 NodeHostname=${host} CPUs=${cpus} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
  : > "$dir/etc/plugstack.conf"
  cat > "$dir/env.sh" <<ENV
export SLURM_CONF=${dir}/etc/slurm.conf
ENV
  export SLURM_CONF="$dir/etc/slurm.conf"

  # ---- slurmctld (foreground, backgrounded by us -> we own the PID) ----
  # -i: ignore errors reading state files, -c would clear state; state dir is fresh anyway
  (detached setsid slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 </dev/null) &
  local ctld=$!
  echo $ctld > "$dir/run/slurmctld.pid.harness"
  wait_for 30 "slurmctld ping" bash -c "kill -0 $ctld || exit 0; scontrol ping | grep -q UP"
  alive $ctld || { log "slurmctld died:"; tail -n 20 "$dir/log/slurmctld.out" >&2; return 1; }

  # ---- slurmd ----
  # -N: node name to register as (defaults to `hostname -s` anyway)
  (detached setsid slurmd -D -N "$host" -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 </dev/null) &
  local sd=$!
  echo $sd > "$dir/run/slurmd.pid.harness"

  if ! wait_for 60 "node idle" bash -c "kill -0 $sd || exit 0; [ \"\$(sinfo -h -n $host -o %t)\" = idle ]" \
     || ! alive $sd; then
    log "node did not become idle (slurmd alive: $(alive $sd && echo yes || echo no))"
    sinfo -N -l >&2 || true
    tail -n 30 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    return 1
  fi
  # Optional: slurmctld's first scheduling pass happens ~3s after it starts;
  # a *batch* job submitted before that waits for it (srun/salloc are not
  # affected: they are allocated synchronously in the RPC).
  if [ -n "${SLURM_CLUSTER_WAIT_SCHED:-}" ]; then
    wait_for 10 "first scheduler pass" grep -q 'SchedulerParameters=' "$dir/log/slurmctld.log" || true
  fi
  local t1; t1=$(now)
  log "cluster up in $(python3 -c "print(round($t1-$t0,3))")s  (SLURM_CONF=$SLURM_CONF, ctld port $ctld_port, slurmd port $d_port)"
}

# descendants of a pid (children first found via ps; depth-first list)
descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"; descendants "$c"
  done
}

vlog() { [ -z "${SLURM_CLUSTER_VERBOSE:-}" ] || log "$* at $(date +%T.%N)"; }

stop() {
  local dir=$1
  [ -d "$dir" ] || { log "no such dir $dir"; return 0; }
  dir=$(cd "$dir" && pwd -P)
  export SLURM_CONF="$dir/etc/slurm.conf"
  local ctld="" slurmd="" munged="" pid s
  [ -s "$dir/run/slurmctld.pid.harness" ] && ctld=$(cat "$dir/run/slurmctld.pid.harness")
  [ -s "$dir/run/slurmd.pid.harness" ]    && slurmd=$(cat "$dir/run/slurmd.pid.harness")
  [ -s "$dir/run/munged.pid" ]            && munged=$(cat "$dir/run/munged.pid")
  # A PID whose process is gone may have been reused: signal only the daemon it named.
  is() { [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }
  is "$ctld" slurmctld || ctld=""
  is "$slurmd" slurmd || slurmd=""
  is "$munged" munged || munged=""

  # 1) cancel all jobs while the daemons are still up (bounded wait).
  if alive "$ctld" && alive "$slurmd" && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    scancel -u "$(id -un)" >/dev/null 2>&1 || true
    wait_for 10 "jobs gone" bash -c '[ -z "$(squeue -h -o %i 2>/dev/null)" ]' || true
  fi
  vlog "jobs cancelled"
  # 2) slurmstepd processes are NOT children of slurmd and survive it. Each one
  #    holds a unix socket <spool>/<node>_<job>.<step>; find them with fuser and
  #    SIGKILL them together with their task trees (proctrack/linuxproc = by ppid).
  for s in "$dir"/spool/*_*.*; do
    [ -S "$s" ] || continue
    for pid in $(fuser "$s" 2>/dev/null); do
      kill -KILL $(descendants "$pid") "$pid" 2>/dev/null || true
    done
  done
  vlog "stepds killed"
  # 3) SIGTERM all three daemons at once (sequentially each takes ~2s to exit),
  #    bounded wait, SIGKILL fallback.
  local pids=()
  for pid in "$slurmd" "$ctld" "$munged"; do alive "$pid" && pids+=("$pid"); done
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    local any=""
    for pid in "${pids[@]}"; do alive "$pid" && any=1; done
    [ -z "$any" ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then log "pid $pid ignored SIGTERM for 10s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  vlog "daemons stopped"
}

case "${1:-}" in
  start)
    # run start with errexit active (a function called in `||` context would
    # silently lose set -e); on failure tear down whatever was started.
    set +e; ( set -e; start "${2:?dir}" ); rc=$?; set -e
    # 3: a cluster already runs in that directory; it is not this start's to stop.
    if [ $rc -eq 3 ]; then exit 3; fi
    if [ $rc -ne 0 ]; then log "start failed (rc=$rc), stopping"; stop "$2"; exit $rc; fi;;
  stop)  stop "${2:?dir}";;
  *) echo "usage: $0 start|stop <dir>" >&2; exit 2;;
esac
