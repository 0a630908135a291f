#!/usr/bin/env bash
# The Slurm job scripts on a real one-node Slurm (scripts/slurm-local.sh) with a tiny
# Fashion-MNIST run. One case per call:
#   scripts     the job body is identical in every cluster/slurm/*.sbatch (no Slurm needed)
#   completes   single_node.sbatch trains to the end: summary.json, exit 0
#   requeue     scontrol requeue while training: the job restarts and finishes the full step
#               count; with --resume in agave_trainer, the restart resumes from a checkpoint
#   scancel     scancel while training: the trainer checkpoints, and the job stays cancelled
#   usr1        scancel --signal=USR1 --batch (what --signal=B:USR1@120 sends): the script has
#               the trainer checkpoint, exit 75 and requeues the job, which resumes and finishes
#   usr1-mpirun the same with AGAVE_LAUNCHER=mpirun (Open MPI's mpirun inside the allocation)
#   term-mpirun AGAVE_LAUNCHER=mpirun, SIGTERM to mpirun itself (a launcher signalled directly,
#               as by Ctrl-C or a node-level kill): mpirun returns 1 although every rank
#               checkpointed and exited 75; the script reads the agreed 75 from AGAVE_EXIT_FILE,
#               requeues, and the restart resumes and finishes
#   usr1-stub   the same with a stand-in for agave_trainer that does what the trainer's contract
#               says (USR1 -> checkpoint, exit 75; resume on restart): tests the job script alone
#   three-nodes three nodes (slurm-local.sh's network namespaces): multi_node.sbatch -N2-3 trains
#               with one rank on each of the three hostnames, in sync, to the end
#   lose-node   multi_node_elastic.sbatch -N2-3 (--no-kill): node3 is lost (link down, every
#               process killed) after a checkpoint; the script starts the step again on node1 and
#               node2, which resume from the newest complete checkpoint before the fault and
#               finish; the final checkpoint is bit-identical to a plain `mpirun -np 2` resume of
#               a copy of that checkpoint
#   lose-node-min the same with AGAVE_MIN_NODES=3: two nodes left are too few, the job ends
#               (FAILED) with one line and is not restarted
#   lose-node-elastic the lose-node fault under agave_elastic (the script picks it when it is
#               installed beside agave_trainer): its failure reports exclude node3, generation 2
#               runs on node1 and node2 from the newest complete checkpoint, exactly one restart,
#               the same bit-identical check
# Exit 77 (CTest's skip) with the reason when the case cannot run here.
# Environment: AGAVE_SOURCE_DIR, AGAVE_BIN_DIR (where agave_trainer is).
set -euo pipefail
# Under pipefail `producer | grep -q` fails when grep exits at its first match and the producer
# then dies of SIGPIPE (141): filters here read all of their input (`grep ... >/dev/null`).

# shellcheck source=tests/common/shell_test.sh
. "$(dirname "$0")/../common/shell_test.sh"
case_name=${1:?usage: $0 scripts|completes|requeue|scancel|usr1|usr1-mpirun|term-mpirun|usr1-stub|three-nodes|lose-node|lose-node-min|lose-node-elastic}
# Under CTest's TIMEOUT, so that the test fails (and cleans up) on its own first.
job_timeout=${AGAVE_SLURM_TEST_TIMEOUT:-240}

if [ "$case_name" = scripts ]; then
  # sbatch copies the script it runs, so the scripts cannot share a sourced file; they carry the
  # same body instead and this keeps the copies from drifting apart.
  body() { sed -n '/^# ---- agave job body/,/^# ---- end of agave job body/p' "$1"; }
  ref=$src/cluster/slurm/single_node.sbatch
  [ -n "$(body "$ref")" ] || fail "no job body markers in $ref"
  for f in "$src"/cluster/slurm/*.sbatch; do
    bash -n "$f" || fail "$f: syntax error"
    grep -q '^#SBATCH --signal=B:USR1@' "$f" || fail "$f: no #SBATCH --signal=B:USR1@..."
    grep -q '^#SBATCH --requeue' "$f" || fail "$f: no #SBATCH --requeue"
    grep -q '^#SBATCH --open-mode=append' "$f" || fail "$f: no #SBATCH --open-mode=append"
    diff <(body "$ref") <(body "$f") >/dev/null || fail "$f: job body differs from $ref"
  done
  echo "job scripts: bodies identical, preemption directives present"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || skip "needs root to start munged, slurmctld and slurmd"
for b in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo srun; do
  command -v "$b" >/dev/null 2>&1 || skip "$b not found (Debian packages slurm-wlm and munge)"
done
if [ "$case_name" != usr1-stub ]; then
  [ -x "$trainer" ] || skip "$trainer not built"
  require_fashion_mnist
fi
has_resume=0
if [ -x "$trainer" ] && "$trainer" --help 2>/dev/null | grep -- '--resume' >/dev/null; then has_resume=1; fi
if { [ "${case_name%-mpirun}" = usr1 ] || [ "$case_name" = scancel ] || [ "$case_name" = term-mpirun ] || [ "${case_name#lose-node}" != "$case_name" ]; } && [ "$has_resume" = 0 ]; then
  skip "agave_trainer has no --resume yet (checkpoint on SIGUSR1 + exit 75 come with it)"
fi

# A run killed outright (SIGKILL, e.g. a CTest timeout) cannot stop its cluster: the next run does.
for owner in /tmp/agave-slurm-test.*/owner.pid; do
  [ -f "$owner" ] || continue
  if ! kill -0 "$(cat "$owner")" 2>/dev/null; then
    echo "stopping the Slurm of a test that was killed: ${owner%/owner.pid}"
    "$src/scripts/slurm-local.sh" stop "${owner%/owner.pid}/slurm" || true
    rm -rf "${owner%/owner.pid}"
  fi
done

work=$(mktemp -d /tmp/agave-slurm-test.XXXXXX)
echo $$ >"$work/owner.pid"
slurm_dir=""
job=""
started=$(date +%s)
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne "$SKIP" ]; then
    if [ -f "$work/job.out" ]; then
      echo "===== job output"
      cat "$work/job.out"
    fi
    if [ -n "$job" ] && [ -n "$slurm_dir" ]; then scontrol show job "$job" 2>/dev/null || true; fi
    if [ -n "$slurm_dir" ]; then "$src/scripts/slurm-local.sh" logs "$slurm_dir" || true; fi
  fi
  if [ "$rc" -eq 0 ] && [ -f "$work/job.out" ]; then
    echo "===== job output"
    cat "$work/job.out"
  fi
  if [ -n "$slurm_dir" ]; then "$src/scripts/slurm-local.sh" stop "$slurm_dir" || true; fi
  rm -rf "$work"
  echo "($case_name: $(($(date +%s) - started)) s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nodes=1
case $case_name in
  three-nodes | lose-node | lose-node-min | lose-node-elastic)
    nodes=3
    for b in ip nsenter unshare mpirun python3; do command -v "$b" >/dev/null 2>&1 || skip "$b not found"; done
    /usr/bin/python3 -c 'import h5py' 2>/dev/null || skip "python3-h5py not installed (compare_checkpoints.py)"
    ip netns add "agave-probe-$$" 2>"$work/netns.err" || skip "ip netns add not permitted: $(cat "$work/netns.err")"
    ip netns del "agave-probe-$$"
    # A lost node is declared down after SlurmdTimeout (and a ping round): seconds, not minutes.
    export AGAVE_SLURM_SLURMD_TIMEOUT=5
    ;;
esac
slurm_dir=$(AGAVE_SLURM_NODES=$nodes "$src/scripts/slurm-local.sh" start "$work/slurm" | tail -n1)
export SLURM_CONF=$slurm_dir/slurm.conf
# Jobs keep this environment: slurm-local.sh's stop finds any process they leave behind by it.
eval "$("$src/scripts/slurm-local.sh" env "$slurm_dir")"
echo "slurm up after $(($(date +%s) - started)) s: $(sinfo -h -N -o '%N %T %C %G')"

# The model of tests/trainer/training_run_test.cpp, one sample per rank and step: seconds a run.
steps=6
# Signal cases: enough steps that a stop sent at step 5 lands well before the end on a quiet
# machine too (a stop at the last step leaves the restart nothing to train).
[ "$case_name" = completes ] || steps=40
case $case_name in lose-node*) steps=60 ;; esac
[ "$case_name" != three-nodes ] || steps=12
batch=2
every=4
# lose-node: the fault must land well before the next checkpoint, or that one may still complete
# (node3's share written just before it is killed) and be the newest instead of step 20.
case $case_name in lose-node*) every=10 ;; esac
[ "$nodes" -eq 1 ] || batch=6 # one rank per node: divides by 3 and by 2
{
  tiny_model_yaml "$work"
  cat <<EOF
train: {batch_size: $batch, steps: $steps}
eval: {importance_samples: 2, subset: 4, final_subset: 4, batch_size: 4, sample_images: 0}
checkpoint: {every: $every}
monitoring: {log_every: 1, progress: plain, prometheus: false}
EOF
  if [ "$nodes" -gt 1 ]; then
    # A rank waits this long for a lost peer; one thread each: the nodes share this machine's cores.
    echo "cluster: {timeout_seconds: 5, threads_per_rank: 1}"
  fi
} >"$work/tiny.yaml"
if [ "$nodes" -gt 1 ]; then
  # The nodes talk over their veths (and loopback): TCP, as between real nodes without InfiniBand.
  export OMPI_MCA_btl=tcp,self
  # shellcheck source=scripts/mpi-env.sh
  . "$src/scripts/mpi-env.sh"
fi
if [ "$case_name" = usr1-stub ]; then
  # Each rank: one step per 0.2 s; SIGUSR1 saves the step and exits 75; a restart resumes there.
  trainer=$work/stub_trainer
  cat >"$trainer" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
step=0
stop=0
trap 'stop=1' USR1
ckpt=runs/tiny/ckpt.$SLURM_PROCID
mkdir -p runs/tiny
if [ -f "$ckpt" ]; then
  step=$(cat "$ckpt")
  echo "[tiny] resumed from $ckpt at step $step"
fi
while [ "$step" -lt "$STEPS" ]; do
  step=$((step + 1))
  [ "$SLURM_PROCID" != 0 ] || echo "[tiny] step $step/$STEPS"
  sleep 0.2 &
  wait $! || true
  if [ "$stop" = 1 ]; then
    echo "$step" >"$ckpt"
    echo "[tiny] rank $SLURM_PROCID checkpointed at step $step"
    exit 75
  fi
done
[ "$SLURM_PROCID" != 0 ] || echo "{\"steps\": $step}" >runs/tiny/summary.json
EOF
  chmod +x "$trainer"
  export STEPS=$steps
fi

if [ "${case_name#*-}" = mpirun ]; then
  # The job keeps this environment; as root, Open MPI's mpirun wants the confirmation too.
  export AGAVE_LAUNCHER=mpirun OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

out=$work/job.out
submit() {
  # The script's GPU request as users submit it, sized to the test node (2 CPUs, 2 fake GPUs).
  (cd "$work" && AGAVE_BIN=$trainer sbatch --parsable --job-name=agave-test \
    --gpus-per-node=2 --ntasks-per-node=2 --cpus-per-task=1 --output="$out" \
    "$src/cluster/slurm/single_node.sbatch" tiny.yaml)
}
field() { scontrol show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }
elapsed() { echo $(($(date +%s) - started)); }

# wait_until WHAT COMMAND...: polls COMMAND until it succeeds, fails after job_timeout.
wait_until() {
  local what=$1
  shift
  while ! "$@"; do
    [ "$(elapsed)" -lt "$job_timeout" ] || fail "timed out after ${job_timeout}s waiting for $what (job state $(field JobState))"
    sleep 0.5
  done
  echo "$(elapsed) s: $what"
}
job_state_is() { [ "$(field JobState)" = "$1" ]; }
job_ended() { case $(field JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) return 0 ;; esac; return 1; }
output_has() { [ -f "$out" ] && grep -q -e "$1" "$out"; }
# The previous run's step daemons are gone (their sockets in the spool folder with them) and the
# node is free again; a step started before that fails to bind its PMIx socket.
previous_run_gone() {
  compgen -G "$slurm_dir/spool/*_$job.*" >/dev/null && return 1
  compgen -G "$slurm_dir/spool/stepd.slurm.pmix.$job.*" >/dev/null && return 1
  [ "$(sinfo -h -N -o '%T' | head -n1)" = idle ]
}
# A requeued job becomes eligible only after Slurm's fixed delay (about two minutes), which also
# lets the previous run clean up: the test waits for the cleanup and then starts it at once.
start_when_requeued() {
  wait_until "job requeued (pending)" job_state_is PENDING
  wait_until "previous run cleaned up" previous_run_gone
  # slurmd refuses a job credential issued in the same second as the kill of the previous run
  # ("Job credential revoked"), and the job then fails instead of starting.
  sleep 2
  scontrol update JobId="$job" StartTime=now
}

check_finished() {
  wait_until "job ended" job_ended
  [ "$(field JobState)" = COMPLETED ] || fail "job ended $(field JobState), exit $(field ExitCode)"
  [ "$(field ExitCode)" = 0:0 ] || fail "job exit code $(field ExitCode)"
  output_has "agave job $job: training finished" || fail "no 'training finished' in the job output"
  output_has "\\[tiny\\] step $steps/$steps" || fail "the run did not reach step $steps"
  [ -f "$work/runs/tiny/summary.json" ] || fail "no $work/runs/tiny/summary.json"
}

# submit_nodes SCRIPT: a multi-node script on the test nodes, -N2-3, one rank and fake GPU a node.
# --ntasks=3: with a node range alone, Slurm 22.05 allocates the minimum (2 nodes) here.
submit_nodes() {
  (cd "$work" && AGAVE_BIN=$trainer AGAVE_PROBE_TIMEOUT=5 sbatch --parsable --job-name=agave-test \
    --nodes=2-3 --ntasks=3 --gpus-per-node=1 --ntasks-per-node=1 --cpus-per-task=1 --output="$out" \
    "$src/cluster/slurm/$1" tiny.yaml)
}
# The ranks' hostnames as the trainer reports them ("host node2, rank 1: ..."), sorted.
rank_hosts() { sed -n "$1"'s/^agave_trainer: host \([^,]*\), rank [0-9]*:.*/\1/p' "$out" | sort | paste -sd' '; }
now_s() { date +%s.%N; }
seconds_since() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$(now_s)"; }

# same_as_a_clean_resume: the final checkpoint equals what a user gets from a clean 2-rank
# resume of $work/resume-from (a copy of checkpoint $before) outside Slurm, tensor by tensor.
same_as_a_clean_resume() {
  sed "s|$work/runs|$work/reference|" "$work/tiny.yaml" >"$work/reference.yaml"
  (cd "$work" && mpirun -np 2 "$trainer" reference.yaml --resume "$work/resume-from") >"$work/reference.log" 2>&1 ||
    { cat "$work/reference.log"; fail "the reference resume failed"; }
  local final
  final=step-$(printf '%08d' "$steps")
  /usr/bin/python3 "$src/tests/trainer/compare_checkpoints.py" "$ckpts/$final" "$work/reference/tiny/checkpoints/$final" ||
    fail "the elastic job's final checkpoint differs from a clean 2-rank resume of $before"
}

case $case_name in
  three-nodes) job=$(submit_nodes multi_node.sbatch) ;;
  # The script's own loop, although agave_elastic is beside the trainer.
  lose-node) job=$(AGAVE_LAUNCHER=srun submit_nodes multi_node_elastic.sbatch) ;;
  lose-node-min) job=$(AGAVE_LAUNCHER=srun AGAVE_MIN_NODES=3 submit_nodes multi_node_elastic.sbatch) ;;
  lose-node-elastic)
    [ -x "$bin_dir/agave_elastic" ] || skip "$bin_dir/agave_elastic is not built"
    # agave_elastic starts mpirun, which as root wants the confirmation.
    # --grace 2: mpirun, which waits for the lost node's daemon, is ended 2 s after the report.
    job=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 AGAVE_ELASTIC_ARGS="--grace 2 --metrics-port 0" \
      submit_nodes multi_node_elastic.sbatch) ;;
  *) job=$(submit) ;;
esac
echo "submitted job $job"
case $case_name in
  completes)
    check_finished
    output_has "2 replica(s) in sync after $steps step(s)" || fail "the 2 ranks did not train $steps steps in sync"
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["steps"] != int(sys.argv[2]))' \
      "$work/runs/tiny/summary.json" "$steps" || fail "summary.json: steps is not $steps"
    [ "$(field Restarts)" = 0 ] || fail "job restarted $(field Restarts) times"
    ;;
  scancel)
    wait_until "training at step 5" output_has "\\[tiny\\] step 5/$steps"
    scancel "$job"
    wait_until "job ended" job_ended
    [ "$(field JobState)" = CANCELLED ] || fail "job ended $(field JobState), expected CANCELLED"
    [ "$(field Restarts)" = 0 ] || fail "a cancelled job was requeued"
    output_has "agave job $job: checkpointed; Slurm is ending the job" ||
      fail "the trainer did not checkpoint and exit 75 on scancel"
    ;;
  term-mpirun)
    wait_until "training at step 5" output_has "\\[tiny\\] step 5/$steps"
    launcher_pid=$(pgrep -o -f '^mpirun -x AGAVE_EXIT_FILE') || fail "no mpirun process found"
    kill -TERM "$launcher_pid"
    wait_until "trainer checkpointed, script requeued" output_has "checkpointed; requeued"
    grep -m1 'returned .*; the ranks agreed on exit' "$out" || echo "NOTE: mpirun itself returned 75"
    start_when_requeued
    wait_until "job restarted" output_has "(restart 1)"
    check_finished
    output_has "resumed from .* at step [1-9]" || fail "the restarted job did not resume from a checkpoint"
    ;;
  requeue | usr1 | usr1-mpirun | usr1-stub)
    # Mid-training: past the first checkpoint, well before the end.
    wait_until "training at step 5" output_has "\\[tiny\\] step 5/$steps"
    if [ "$case_name" = usr1-stub ]; then has_resume=1; fi
    if [ "$case_name" = requeue ]; then
      scontrol requeue "$job"
    else
      scancel --signal=USR1 --batch "$job"
      wait_until "the script forwarded SIGUSR1" output_has "SIGUSR1 received"
      wait_until "trainer checkpointed, script requeued" output_has "checkpointed; requeued"
    fi
    start_when_requeued
    wait_until "job restarted" output_has "(restart 1)"
    check_finished
    [ "$(field Restarts)" = 1 ] || fail "job restarted $(field Restarts) times, expected 1"
    if [ "$has_resume" = 1 ]; then
      output_has "resumed from .* at step [1-9]" || fail "the restarted job did not resume from a checkpoint"
      grep -m1 'resumed from' "$out"
      # The restart's first step follows the checkpoint instead of starting over at step 1.
      first=$(sed -n '/(restart 1)/,$p' "$out" | grep -m1 -o '\[tiny\] step [0-9]*/' | grep -o '[0-9]*' || true)
      [ "${first:-1}" -gt 1 ] || fail "the restarted job trained from step ${first:-?}"
    else
      echo "NOTE: agave_trainer has no --resume yet: the requeued job trained again from step 0"
    fi
    ;;
  three-nodes)
    check_finished
    [ "$(rank_hosts '')" = "node1 node2 node3" ] || fail "ranks ran on '$(rank_hosts '')', not node1 node2 node3"
    output_has "3 replica(s) in sync after $steps step(s)" || fail "the 3 ranks did not train $steps steps in sync"
    ;;
  lose-node | lose-node-min)
    ckpts=$work/runs/tiny/checkpoints
    wait_until "checkpoint at step 20" output_has "checkpoint .*step-00000020"
    [ "$(rank_hosts '')" = "node1 node2 node3" ] || fail "ranks ran on '$(rank_hosts '')', not node1 node2 node3"
    "$src/scripts/slurm-local.sh" lose "$slurm_dir" node3
    fault=$(now_s)
    if [ "$case_name" = lose-node-min ]; then
      wait_until "job ended" job_ended
      echo "job ended $(seconds_since "$fault") s after the fault"
      [ "$(field JobState)" = FAILED ] || fail "job ended $(field JobState), expected FAILED"
      output_has "2 node(s) answer (node1,node2), fewer than AGAVE_MIN_NODES=3: not restarted" ||
        fail "no line saying two nodes are fewer than AGAVE_MIN_NODES=3"
      ! output_has "generation 1" || fail "the job was restarted below AGAVE_MIN_NODES"
      echo "PASSED $case_name after $(elapsed) s"
      exit 0
    fi
    # Nothing completes a checkpoint without node3's rank: this is the newest complete one.
    before=$(cat "$ckpts/latest")
    cp -a "$ckpts/$before" "$work/resume-from"
    echo "node3 lost after $before"
    wait_until "generation 1 started" output_has "generation 1 on node\[1-2\]"
    echo "generation 1 on node1 node2 after $(seconds_since "$fault") s"
    first_step() { sed -n '/generation 1 on/,$p' "$out" | grep '\[tiny\] step [0-9]*/' >/dev/null; }
    wait_until "generation 1 trains" first_step
    took=$(seconds_since "$fault")
    echo "fault to the first step of generation 1: $took s"
    check_finished
    [ "$(rank_hosts '/generation 1 on/,$')" = "node1 node2" ] || fail "generation 1 ran on '$(rank_hosts '/generation 1 on/,$')'"
    sed -n '/generation 1 on/,$p' "$out" | grep "resumed from .*$before at step" >/dev/null ||
      fail "generation 1 did not resume from $before (the newest complete checkpoint before the fault): $(grep 'resumed from' "$out" || echo 'no resume line')"
    [ "$(grep -c 'restart [0-9]*/[0-9]* on the' "$out")" = 1 ] || fail "not exactly one restart"
    same_as_a_clean_resume
    ;;
  lose-node-elastic)
    ckpts=$work/runs/tiny/checkpoints
    wait_until "checkpoint at step 20" output_has "checkpoint .*step-00000020"
    output_has "agave_elastic: generation 1: hosts node1, node2, node3, 3 rank(s)" || fail "generation 1 is not agave_elastic's on node1 node2 node3"
    [ "$(rank_hosts '')" = "node1 node2 node3" ] || fail "ranks ran on '$(rank_hosts '')', not node1 node2 node3"
    "$src/scripts/slurm-local.sh" lose "$slurm_dir" node3
    fault=$(now_s)
    before=$(cat "$ckpts/latest")
    cp -a "$ckpts/$before" "$work/resume-from"
    echo "node3 lost after $before"
    wait_until "generation 2 started" output_has "agave_elastic: generation 2: hosts node1, node2"
    grep -m1 "agave_elastic: generation 2" "$out"
    echo "generation 2 on node1 node2 after $(seconds_since "$fault") s"
    first_step() { sed -n '/agave_elastic: generation 2/,$p' "$out" | grep '\[tiny\] step [0-9]*/' >/dev/null; }
    wait_until "generation 2 trains" first_step
    echo "fault to the first step of generation 2: $(seconds_since "$fault") s"
    # agave_elastic's Prometheus series as a scrape sees them now, from node1 (it serves on
    # node1's loopback), and the address it left for Prometheus's file discovery.
    url=$(grep -m1 -o 'agave_elastic: Prometheus metrics at http://[^ ]*' "$out" | sed 's/.* at //')
    [ -n "$url" ] || fail "agave_elastic printed no metrics address"
    ls "$work/runs/prometheus_targets/"*.json >/dev/null || fail "agave_elastic wrote no Prometheus target file"
    node1_ns=$(awk '$1 == "node1" {print $2}' "$slurm_dir/nodes")
    nsenter --net="/var/run/netns/$node1_ns" curl -sf "$url" >"$work/elastic.prom" || fail "cannot scrape $url from node1"
    for series in 'agave_elastic_generation 2' 'agave_elastic_ranks 2' 'agave_elastic_excluded_hosts 1' \
      'agave_elastic_restarts_total{cause="peer_lost"} 1'; do
      grep -qxF "$series" "$work/elastic.prom" || fail "no '$series' in the scrape: $(grep agave_elastic "$work/elastic.prom")"
    done
    check_finished
    [ "$(rank_hosts '/agave_elastic: generation 2/,$')" = "node1 node2" ] || fail "generation 2 ran on '$(rank_hosts '/agave_elastic: generation 2/,$')'"
    sed -n '/agave_elastic: generation 2/,$p' "$out" | grep "resumed from .*$before at step" >/dev/null ||
      fail "generation 2 did not resume from $before: $(grep 'resumed from' "$out" || echo 'no resume line')"
    [ "$(grep -c 'agave_elastic: generation [0-9]*:' "$out")" = 2 ] || fail "not exactly one restart"
    same_as_a_clean_resume
    ;;
  *) fail "unknown case $case_name" ;;
esac
echo "PASSED $case_name after $(elapsed) s"
