#!/usr/bin/env bash
# deploy/local/servers.sh - real Apache Kafka and Apache Cassandra on 127.0.0.1 for Sluice
# development and integration tests. Needs only Java 17 (java, with the jdk.compiler module
# for the single-file probes; Debian's openjdk-17-jre-headless has it), Maven (mvn) and
# Maven Central.
#
# Usage:
#   deploy/local/servers.sh fetch                   fetch the server jars into the cache (once)
#   deploy/local/servers.sh start [kafka|cassandra] fetch if needed, start (both by default) and
#                                                   wait until each really serves; servers that
#                                                   are already up are reused
#   deploy/local/servers.sh stop  [kafka|cassandra] SIGTERM, wait, SIGKILL after a timeout;
#                                                   data directories are kept
#   deploy/local/servers.sh status [kafka|cassandra] exit 0 only if every named server serves
#   deploy/local/servers.sh reset                   stop both and wipe their data and logs
#                                                   (the jar cache stays)
#
# Private instances: with SLUICE_SERVERS_RUN=DIR (and the port variables below set to free
# ports) every command acts on a separate Kafka and/or Cassandra whose data, logs, config,
# pid files and lock live in DIR, run from the same cached jars. A test can stop and start
# its own servers that way without touching the shared ones on 9092/9042, e.g.
#   SLUICE_SERVERS_RUN=/tmp/t SLUICE_KAFKA_PORT=19092 SLUICE_KAFKA_CONTROLLER_PORT=19093 \
#     deploy/local/servers.sh start kafka
# (`reset` then wipes DIR/kafka and DIR/cassandra only).
#
# What runs:
#   Kafka 3.9 (KRaft, broker+controller in one JVM, heap 512 MiB), clients on 127.0.0.1:9092
#   Cassandra 5.0 (single node, heap 1 GiB), CQL on 127.0.0.1:9042
#   Versions are pinned in deploy/local/pom.xml; config templates live in deploy/local/conf/.
#
# "Serves" means: Kafka - one record produced to and consumed back from the scratch topic
# __sluice_probe (deploy/local/probe/KafkaProbe.java); Cassandra - SELECT release_version
# FROM system.local returns a row (deploy/local/probe/CqlProbe.java). Start gives up after
# 90 s (Kafka) / 180 s (Cassandra) and prints the tail of the server log.
#
# Environment:
#   SLUICE_CACHE                   cache root (default ~/.cache/sluice). Jars go to
#                                  $SLUICE_CACHE/servers/{kafka,cassandra}/libs, Maven's
#                                  repository to $SLUICE_CACHE/m2, and data, logs, rendered
#                                  config and pid files to $SLUICE_CACHE/servers/run/<name>/
#   SLUICE_SERVERS_RUN             a private instance's directory instead of
#                                  $SLUICE_CACHE/servers/run (see above)
#   SLUICE_KAFKA_PORT              Kafka client port (9092)
#   SLUICE_KAFKA_CONTROLLER_PORT   KRaft controller port (9093)
#   SLUICE_CQL_PORT                CQL native port (9042)
#   SLUICE_CASSANDRA_STORAGE_PORT  Cassandra internode port (7000)
#   SLUICE_CASSANDRA_JMX_PORT      Cassandra JMX port, local only, for nodetool (7199)
#   SLUICE_KAFKA_START_TIMEOUT, SLUICE_CASSANDRA_START_TIMEOUT, SLUICE_STOP_TIMEOUT
#                                  seconds (90, 180, 60)
#   SLUICE_JAVA, SLUICE_MVN        java and mvn to use (java, mvn from PATH)
#
# Logs: $SLUICE_CACHE/servers/run/kafka/logs/server.log,
#       $SLUICE_CACHE/servers/run/cassandra/logs/system.log, and <name>.out (the JVM's
#       stdout/stderr) beside each.

set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # keep '&' literal in ${var//pat/rep}

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
CACHE=${SLUICE_CACHE:-$HOME/.cache/sluice}
SERVERS=$CACHE/servers
RUN=$SERVERS/run
LOCK=$SERVERS/.lock
if [[ -n ${SLUICE_SERVERS_RUN:-} ]]; then
  mkdir -p "$SLUICE_SERVERS_RUN"
  RUN=$(cd -- "$SLUICE_SERVERS_RUN" && pwd)
  LOCK=$RUN/.lock
fi
FETCH_MARKER=$SERVERS/.fetched
KAFKA_LIBS=$SERVERS/kafka/libs
CASSANDRA_LIBS=$SERVERS/cassandra/libs
JAVA=${SLUICE_JAVA:-java}
MVN=${SLUICE_MVN:-mvn}

KAFKA_PORT=${SLUICE_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${SLUICE_KAFKA_CONTROLLER_PORT:-9093}
CQL_PORT=${SLUICE_CQL_PORT:-9042}
CASSANDRA_STORAGE_PORT=${SLUICE_CASSANDRA_STORAGE_PORT:-7000}
CASSANDRA_JMX_PORT=${SLUICE_CASSANDRA_JMX_PORT:-7199}

KAFKA_HEAP=512m
CASSANDRA_HEAP=1g
KAFKA_START_TIMEOUT=${SLUICE_KAFKA_START_TIMEOUT:-90}
CASSANDRA_START_TIMEOUT=${SLUICE_CASSANDRA_START_TIMEOUT:-180}
STOP_TIMEOUT=${SLUICE_STOP_TIMEOUT:-60}
ALL_SERVERS=(kafka cassandra)

# --- small helpers -----------------------------------------------------------------------

log() { printf '%s\n' "$*" >&2; }
die() {
  log "servers.sh: error: $*"
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# seconds_since T0_MS -> "12.3"
seconds_since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

main_class() {
  case $1 in
    kafka) echo kafka.Kafka ;;
    cassandra) echo org.apache.cassandra.service.CassandraDaemon ;;
  esac
}

client_port() {
  case $1 in
    kafka) echo "$KAFKA_PORT" ;;
    cassandra) echo "$CQL_PORT" ;;
  esac
}

pid_file() { echo "$RUN/$1/$1.pid"; }

# The ports a server gets from the current environment; recorded in RUN/NAME/ports at launch.
ports_of() {
  case $1 in
    kafka) echo "client=$KAFKA_PORT controller=$KAFKA_CONTROLLER_PORT" ;;
    cassandra) echo "cql=$CQL_PORT storage=$CASSANDRA_STORAGE_PORT jmx=$CASSANDRA_JMX_PORT" ;;
  esac
}

# same_ports NAME: the running server was started with the ports of this environment.
same_ports() {
  local file=$RUN/$1/ports
  [[ ! -f $file || $(<"$file") == "$(ports_of "$1")" ]] || {
    log "$1: running with ports $(<"$file"), but this environment says $(ports_of "$1")"
    return 1
  }
}

# A process counts as alive while it exists and is not a zombie.
alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# running_pid NAME: print the pid of the server if its pid file names a live JVM running
# that server's main class (guards against a recycled pid).
running_pid() {
  local file pid cmdline
  file=$(pid_file "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ " $cmdline " == *" $(main_class "$1") "* ]] || return 1
  echo "$pid"
}

rss_mib() {
  awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo '?'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# render TEMPLATE OUT KEY=VALUE...: replace @KEY@ in TEMPLATE, write OUT.
render() {
  local template=$1 out=$2 kv content
  shift 2
  content=$(<"$template")
  for kv in "$@"; do
    content=${content//@${kv%%=*}@/${kv#*=}}
  done
  if grep -qE '@[A-Z_]+@' <<<"$content"; then
    die "unfilled placeholder in $template: $(grep -oE '@[A-Z_]+@' <<<"$content" | sort -u | tr '\n' ' ')"
  fi
  printf '%s\n' "$content" >"$out"
}

java_major() {
  "$JAVA" -XshowSettings:properties -version 2>&1 |
    awk -F'= ' '/java.specification.version/ {v = $2} END {print v}'
}

check_tools() {
  command -v "$JAVA" >/dev/null || die "java not found (set SLUICE_JAVA)"
  local major
  major=$(java_major)
  [[ $major =~ ^[0-9]+$ ]] || die "cannot tell the version of $JAVA"
  ((major >= 11)) || die "$JAVA is Java $major; Cassandra 5.0 needs Java 17 (or 11)"
  ((major == 17 || major == 11)) ||
    log "warning: $JAVA is Java $major; Cassandra 5.0 supports only Java 11 and 17"
}

# --- fetch -------------------------------------------------------------------------------

# The cache is complete when the marker holds the hash of the pom it was fetched with.
fetch_stamp() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }

fetched() { [[ -f $FETCH_MARKER && $(<"$FETCH_MARKER") == "$(fetch_stamp)" ]]; }

cmd_fetch() {
  if fetched; then
    log "fetch: artifacts already cached in $SERVERS"
    return 0
  fi
  command -v "$MVN" >/dev/null || die "mvn not found (set SLUICE_MVN)"
  mkdir -p "$SERVERS"
  rm -f "$FETCH_MARKER"
  local t0 profile dest
  t0=$(now_ms)
  for profile in "${ALL_SERVERS[@]}"; do
    dest=$SERVERS/$profile/libs
    log "fetch: $profile jars from Maven Central -> $dest"
    rm -rf "$dest.tmp"
    if ! "$MVN" -q -B -Dstyle.color=never -f "$HERE/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
      -P "$profile" dependency:copy-dependencies -DoutputDirectory="$dest.tmp" \
      >"$SERVERS/fetch-$profile.log" 2>&1; then
      sed 's/\x1b\[[0-9;]*m//g' "$SERVERS/fetch-$profile.log" | tail -n 40 >&2
      die "mvn could not fetch the $profile jars (log: $SERVERS/fetch-$profile.log)"
    fi
    rm -rf "$dest"
    mv "$dest.tmp" "$dest"
  done
  fetch_stamp >"$FETCH_MARKER"
  log "fetch: done in $(seconds_since "$t0") s" \
    "(kafka $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars," \
    "cassandra $(find "$CASSANDRA_LIBS" -name '*.jar' | wc -l) jars)"
}

# --- probes ------------------------------------------------------------------------------

# probe NAME WAIT_SECONDS [PID]: exit 0 once the server serves; prints the probe's "ok ..."
# line on stdout and its last error on stderr.
probe() {
  local name=$1 wait=$2 pid=${3:-}
  local jvm=(-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC)
  case $name in
    kafka)
      "$JAVA" "${jvm[@]}" -Dlog4j.configuration="file:$HERE/conf/log4j-quiet.properties" \
        -cp "$KAFKA_LIBS/*" "$HERE/probe/KafkaProbe.java" \
        "127.0.0.1:$KAFKA_PORT" "$wait" ${pid:+"$pid"}
      ;;
    cassandra)
      "$JAVA" "${jvm[@]}" -Dlogback.configurationFile="$HERE/conf/logback-quiet.xml" \
        -cp "$CASSANDRA_LIBS/*" "$HERE/probe/CqlProbe.java" \
        127.0.0.1 "$CQL_PORT" "$wait" ${pid:+"$pid"}
      ;;
  esac
}

# --- launching ---------------------------------------------------------------------------

# launch NAME CMD...: run CMD detached (own session, no terminal, no inherited lock fd),
# stdout/stderr to logs/NAME.out; the pid file gets the JVM's pid (bash execs into it).
launch() {
  local name=$1
  shift
  local dir=$RUN/$name
  printf '\n=== %s: %s start\n' "$(date -Is)" "$name" >>"$dir/logs/$name.out"
  # shellcheck disable=SC2016 # $$ and "$@" are for the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$(pid_file "$name")" "$@" \
    </dev/null >>"$dir/logs/$name.out" 2>&1 9>&- &
  local i
  for i in $(seq 50); do
    [[ -s $(pid_file "$name") ]] && return 0
    sleep 0.1
  done
  die "$name: no pid file after launch"
}

prepare_kafka() {
  local dir=$RUN/kafka
  mkdir -p "$dir/data" "$dir/logs" "$dir/config"
  render "$HERE/conf/kafka-server.properties.in" "$dir/config/server.properties" \
    KAFKA_PORT="$KAFKA_PORT" CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" DATA_DIR="$dir/data"
  cp "$HERE/conf/kafka-log4j.properties" "$dir/config/log4j.properties"

  if [[ ! -f $dir/data/meta.properties ]]; then
    local tool=("$JAVA" -Dlog4j.configuration="file:$HERE/conf/log4j-quiet.properties"
      -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool)
    local cluster_id
    cluster_id=$("${tool[@]}" random-uuid) || die "kafka: StorageTool random-uuid failed"
    log "kafka: formatting $dir/data (cluster id $cluster_id)"
    "${tool[@]}" format -t "$cluster_id" -c "$dir/config/server.properties" \
      >>"$dir/logs/format.log" 2>&1 ||
      die "kafka: StorageTool format failed: $(tail -n 20 "$dir/logs/format.log")"
  fi
}

launch_kafka() {
  local dir=$RUN/kafka
  MALLOC_ARENA_MAX=4 launch kafka "$JAVA" \
    -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -server \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
    -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$dir/logs" \
    -Dlog4j.configuration="file:$dir/config/log4j.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/config/server.properties"
}

prepare_cassandra() {
  local dir=$RUN/cassandra
  mkdir -p "$dir/data" "$dir/logs" "$dir/conf/triggers"
  render "$HERE/conf/cassandra.yaml.in" "$dir/conf/cassandra.yaml" \
    CQL_PORT="$CQL_PORT" STORAGE_PORT="$CASSANDRA_STORAGE_PORT" DATA_DIR="$dir/data"
  cp "$HERE/conf/cassandra-logback.xml" "$dir/conf/logback.xml"
}

launch_cassandra() {
  local dir=$RUN/cassandra line jamm
  local opts=() words=()
  while IFS= read -r line; do
    [[ $line == -* ]] || continue
    read -ra words <<<"$line"
    opts+=("${words[@]}")
  done <"$HERE/conf/cassandra-jvm17.options"
  jamm=$(compgen -G "$CASSANDRA_LIBS/jamm-*.jar" | head -n 1) ||
    die "cassandra: no jamm jar in $CASSANDRA_LIBS"

  # Cassandra always calls mlockall(MCL_CURRENT), which pins the whole committed heap when it
  # is allowed to: for root (CAP_IPC_LOCK ignores `ulimit -l`) that makes RSS ~1.5 GiB. Drop
  # the capability so it fails as for a normal user (one warning in system.log) and memory is
  # only used as needed.
  local prefix=()
  if ((EUID == 0)) && command -v setpriv >/dev/null; then
    prefix=(setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock)
  fi

  MALLOC_ARENA_MAX=4 launch cassandra "${prefix[@]}" "$JAVA" "${opts[@]}" \
    -Xms"$CASSANDRA_HEAP" -Xmx"$CASSANDRA_HEAP" \
    -XX:HeapDumpPath="$dir/logs" \
    -javaagent:"$jamm" \
    -Dcassandra-foreground=yes \
    -Dcassandra.config="file://$dir/conf/cassandra.yaml" \
    -Dcassandra.storagedir="$dir/data" \
    -Dcassandra.logdir="$dir/logs" \
    -Dcassandra.triggers_dir="$dir/conf/triggers" \
    -Dlogback.configurationFile="$dir/conf/logback.xml" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT" \
    -cp "$dir/conf:$CASSANDRA_LIBS/*" \
    org.apache.cassandra.service.CassandraDaemon
}

server_logs() {
  case $1 in
    kafka) echo "$RUN/kafka/logs/server.log" "$RUN/kafka/logs/kafka.out" ;;
    cassandra) echo "$RUN/cassandra/logs/system.log" "$RUN/cassandra/logs/cassandra.out" ;;
  esac
}

show_log_tails() {
  local f
  for f in $(server_logs "$1"); do
    [[ -s $f ]] || continue
    log "----- last 40 lines of $f"
    tail -n 40 "$f" >&2
  done
  log "-----"
}

# wait_serving NAME PID TIMEOUT T0_MS: wait for the probe, then report time and RSS.
wait_serving() {
  local name=$1 pid=$2 timeout=$3 t0=$4 out
  if out=$(probe "$name" "$timeout" "$pid"); then
    log "$name: up on 127.0.0.1:$(client_port "$name") after $(seconds_since "$t0") s" \
      "(pid $pid, RSS $(rss_mib "$pid") MiB; probe: $out)"
    return 0
  fi
  if alive "$pid"; then
    log "$name: ERROR: not serving after ${timeout} s; stopping it (pid $pid)"
    show_log_tails "$name"
    stop_one "$name" >/dev/null 2>&1 || true
  else
    log "$name: ERROR: the server process (pid $pid) exited during startup"
    show_log_tails "$name"
    rm -f "$(pid_file "$name")"
  fi
  return 1
}

start_one() {
  local name=$1 pid timeout t0 port
  case $name in
    kafka) timeout=$KAFKA_START_TIMEOUT ;;
    cassandra) timeout=$CASSANDRA_START_TIMEOUT ;;
  esac

  if pid=$(running_pid "$name"); then
    same_ports "$name" || die "$name: stop it first to change its ports"
    t0=$(now_ms)
    local out
    if out=$(probe "$name" 5 "$pid" 2>/dev/null); then
      log "$name: already up on 127.0.0.1:$(client_port "$name") (pid $pid, RSS $(rss_mib "$pid") MiB; probe: $out)"
      return 0
    fi
    log "$name: pid $pid is running but not serving yet; waiting up to ${timeout} s"
    wait_serving "$name" "$pid" "$timeout" "$t0"
    return
  fi
  rm -f "$(pid_file "$name")"

  case $name in
    kafka) for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
      ! port_in_use "$port" || die "kafka: 127.0.0.1:$port is already in use by another process"
    done ;;
    cassandra) for port in "$CQL_PORT" "$CASSANDRA_STORAGE_PORT" "$CASSANDRA_JMX_PORT"; do
      ! port_in_use "$port" || die "cassandra: 127.0.0.1:$port is already in use by another process"
    done ;;
  esac

  "prepare_$name"
  ports_of "$name" >"$RUN/$name/ports"
  t0=$(now_ms)
  "launch_$name"
  pid=$(<"$(pid_file "$name")")
  log "$name: started (pid $pid), waiting up to ${timeout} s until it serves;" \
    "log: $(server_logs "$name" | cut -d' ' -f1)"
  wait_serving "$name" "$pid" "$timeout" "$t0"
}

stop_one() {
  local name=$1 pid i
  if ! pid=$(running_pid "$name"); then
    rm -f "$(pid_file "$name")"
    log "$name: not running"
    return 0
  fi
  local t0
  t0=$(now_ms)
  log "$name: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name: still running after ${STOP_TIMEOUT} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    ! alive "$pid" || die "$name: pid $pid survived SIGKILL"
  fi
  rm -f "$(pid_file "$name")"
  log "$name: stopped in $(seconds_since "$t0") s"
}

# --- commands ----------------------------------------------------------------------------

# Mutating commands hold this lock, so two concurrent starts cannot launch two brokers. A
# private instance has a lock of its own; fetching always takes the shared one (fd 8).
take_lock() {
  mkdir -p "$SERVERS"
  exec 9>"$LOCK"
  flock -w 600 9 || die "another servers.sh has held $LOCK for 10 minutes"
}

take_fetch_lock() {
  [[ $LOCK != "$SERVERS/.lock" ]] || return 0
  exec 8>"$SERVERS/.lock"
  flock -w 600 8 || die "another servers.sh has held $SERVERS/.lock for 10 minutes"
}

cmd_start() {
  check_tools
  fetched || { take_fetch_lock && cmd_fetch; }
  local name pids=() failed=0 i
  for name in "$@"; do
    start_one "$name" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i" || failed=1
  done
  ((failed == 0)) || die "not every server came up (see above)"
}

cmd_stop() {
  local name pids=() failed=0 i
  for name in "$@"; do
    stop_one "$name" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i" || failed=1
  done
  return "$failed"
}

cmd_status() {
  local name pid out rc=0
  for name in "$@"; do
    if ! pid=$(running_pid "$name"); then
      echo "$name: down"
      rc=1
    elif ! same_ports "$name" 2>/dev/null; then
      echo "$name: running (pid $pid) with ports $(<"$RUN/$name/ports"), not $(ports_of "$name")"
      rc=1
    elif ! fetched; then
      echo "$name: process running (pid $pid), but the jar cache is incomplete, cannot probe"
      rc=1
    elif out=$(probe "$name" 3 "$pid" 2>/dev/null); then
      echo "$name: up on 127.0.0.1:$(client_port "$name") (pid $pid, RSS $(rss_mib "$pid") MiB; probe: $out)"
    else
      echo "$name: process running (pid $pid) but NOT serving on 127.0.0.1:$(client_port "$name")"
      rc=1
    fi
  done
  return "$rc"
}

cmd_reset() {
  cmd_stop "${ALL_SERVERS[@]}"
  if [[ $LOCK != "$SERVERS/.lock" ]]; then
    rm -rf -- "${RUN:?}/kafka" "${RUN:?}/cassandra"
    log "reset: wiped the private instances' data in $RUN"
    return 0
  fi
  [[ -n $RUN && $RUN == */servers/run ]] || die "refusing to wipe unexpected path '$RUN'"
  rm -rf -- "$RUN"
  log "reset: wiped $RUN (the jar cache in $SERVERS stays)"
}

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# servers_from ARGS...: the named servers, or all of them.
servers_from() {
  local name
  (($# > 0)) || set -- "${ALL_SERVERS[@]}"
  for name in "$@"; do
    case $name in
      kafka | cassandra) echo "$name" ;;
      *) die "unknown server '$name' (kafka or cassandra)" ;;
    esac
  done
}

main() {
  (($# > 0)) || usage
  local cmd=$1 names
  shift
  case $cmd in
    fetch | start | stop | status | reset) ;;
    -h | --help | help) usage ;;
    *)
      log "unknown command '$cmd'"
      usage
      ;;
  esac
  names=$(servers_from "$@")
  local -a servers
  mapfile -t servers <<<"$names"

  case $cmd in
    fetch)
      take_lock
      take_fetch_lock
      cmd_fetch
      ;;
    start)
      take_lock
      cmd_start "${servers[@]}"
      ;;
    stop)
      take_lock
      cmd_stop "${servers[@]}"
      ;;
    status) cmd_status "${servers[@]}" ;;
    reset)
      (($# == 0)) || die "reset takes no server name"
      take_lock
      cmd_reset
      ;;
  esac
}

main "$@"
