#!/usr/bin/env bash
# The test command: installs what is missing, builds, installs, then runs every
# layer (pg_regress, isolation, TAP) as user postgres against a throw-away
# cluster, and ends with one line: "N passed, N failed".
# For development, QUERATOR_ONLY=REGEX runs only the tests whose name (pg_regress
# file, isolation spec or TAP file) matches REGEX; CI always runs everything.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PASSED=0
FAILED=0
ONLY=${QUERATOR_ONLY:-}
# Keeps the names (one per argument) that QUERATOR_ONLY selects.
selected() {
	local n
	for n in "$@"; do
		[[ -z $ONLY || $n =~ $ONLY ]] && echo "$n"
	done
	return 0
}
DATADIR=
SUMMARY_PRINTED=
# Stops the cluster on every exit; a run that died before the summary (build
# error, server that will not start) still ends with the summary line, as a failure.
on_exit() {
	local rc=$?
	[[ -n $DATADIR ]] && stop_cluster "$DATADIR" fast
	if [[ -z $SUMMARY_PRINTED ]]; then
		echo "$PASSED passed, $((FAILED + 1)) failed"
		[[ $rc -ne 0 ]] || rc=1
	fi
	exit "$rc"
}
trap on_exit EXIT

require_root
install_packages
build_and_install

# build/ (or /tmp when postgres cannot reach the checkout) holds everything the
# tests write, so the source tree stays clean.
BUILD=$(pg_workdir build /tmp/querator-build)
DATADIR=$BUILD/test-cluster
SOCKDIR=$BUILD/run

# Never reuse what an earlier run left behind, a running server included.
stop_cluster "$DATADIR" immediate
rm -rf "$DATADIR" "$SOCKDIR" "$BUILD/inputs" "$BUILD/regress" "$BUILD/isolation" "$BUILD/tap"
mkdir -p "$BUILD" "$SOCKDIR"
# The postgres user reads a copy of the test inputs, whatever the checkout's permissions
# (the README too: the fuzz test accepts the SQLSTATEs it documents; src too: test/t/055
# builds a unit test of the pure C++ webhook address policy; docs too: test/t/090 runs
# every SQL block of the runbook; examples too: test/t/091 runs the driver examples).
mkdir -p "$BUILD/inputs"
cp -r "$ROOT/sql" "$ROOT/expected" "$ROOT/src" "$ROOT/docs" "$ROOT/examples" "$ROOT/README.md" "$BUILD/inputs/"
[[ -d $ROOT/test ]] && cp -r "$ROOT/test" "$BUILD/inputs/"
chown -R "$PG_USER:" "$BUILD"

PORT=54329
while port_in_use "$PORT" "$SOCKDIR"; do PORT=$((PORT + 1)); done

log "starting a throw-away cluster on port $PORT in $DATADIR"
init_cluster "$DATADIR" "$PORT" "$SOCKDIR" "listen_addresses = ''"
start_cluster "$DATADIR" "$BUILD/test-cluster.log"
CONN=(--host="$SOCKDIR" --port="$PORT" --user="$PG_USER")

# Adds a layer's counts from its log: one line per test, in pg_regress's PG15
# format ("test x ... ok") or the newer TAP format ("ok 1 - x" / "not ok 1 - x").
# A runner that failed without reporting any test counts as one failure.
count_results() {
	local name=$1 logfile=$2 status=$3 ok bad
	ok=$(grep -cE '\.\.\. +ok( |$)|^ok [0-9]+ ' "$logfile" || true)
	bad=$(grep -cE '\.\.\. +FAILED|\.\.\. +failed|^not ok [0-9]+ ' "$logfile" || true)
	if [[ $status -ne 0 && $bad -eq 0 ]]; then
		log "$name: runner failed (exit $status) without a test failure; counting one"
		bad=1
	fi
	log "$name: $ok passed, $bad failed"
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
	return 0
}

# Prints a Makefile variable (the REGRESS list lives only there).
make_var() {
	make -s -C "$ROOT" --no-print-directory PG_CONFIG="$PG_CONFIG" -f Makefile \
		-f <(printf 'print-var:\n\t@echo $(%s)\n' "$1") print-var
}

# Layer 1: pg_regress, one test per sql/NAME.sql.
log "layer 1: pg_regress"
if [[ -n $ONLY ]]; then log "only tests matching /$ONLY/"; fi
read -ra REGRESS <<<"$(make_var REGRESS)"
# setup creates the extension every other file uses.
if [[ -n $ONLY ]]; then
	mapfile -t REGRESS < <(echo setup; selected "${REGRESS[@]}" | grep -vx setup)
fi
read -ra REGRESS_OPTS <<<"$(make_var REGRESS_OPTS)"
mkdir -p "$BUILD/regress" && chown "$PG_USER:" "$BUILD/regress"
status=0
as_pg "$PGXS_DIR/src/test/regress/pg_regress" --inputdir="$BUILD/inputs" \
	--outputdir="$BUILD/regress" --bindir="$PG_BIN" "${CONN[@]}" \
	"${REGRESS_OPTS[@]}" "${REGRESS[@]}" 2>&1 | tee "$BUILD/regress.log" || status=$?
count_results pg_regress "$BUILD/regress.log" "$status"
[[ $status -ne 0 && -f $BUILD/regress/regression.diffs ]] && cat "$BUILD/regress/regression.diffs"

# Layer 2: isolation specs, one test per test/isolation/specs/NAME.spec.
log "layer 2: isolation"
SPECS=()
for f in "$BUILD"/inputs/test/isolation/specs/*.spec; do
	[[ -e $f ]] && SPECS+=($(selected "$(basename "$f" .spec)"))
done
if [[ ${#SPECS[@]} -gt 0 ]]; then
	mkdir -p "$BUILD/isolation" && chown "$PG_USER:" "$BUILD/isolation"
	status=0
	as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
		--inputdir="$BUILD/inputs/test/isolation" --outputdir="$BUILD/isolation" \
		--bindir="$PG_BIN" "${CONN[@]}" "${SPECS[@]}" 2>&1 | tee "$BUILD/isolation.log" || status=$?
	count_results isolation "$BUILD/isolation.log" "$status"
	[[ $status -ne 0 && -f $BUILD/isolation/regression.diffs ]] && cat "$BUILD/isolation/regression.diffs"
else
	log "isolation: no specs"
fi

# Layer 3: TAP files, each starting its own clusters (PostgreSQL::Test::Cluster);
# TEMP_CONFIG preloads querator in every one of them.
log "layer 3: TAP"
TAPS=()
for f in "$BUILD"/inputs/test/t/*.pl; do
	[[ -e $f && -n $(selected "$(basename "$f" .pl)") ]] && TAPS+=("$f")
done
if [[ ${#TAPS[@]} -gt 0 ]]; then
	mkdir -p "$BUILD/tap"
	echo "shared_preload_libraries = 'querator'" >"$BUILD/tap/temp.conf"
	chown -R "$PG_USER:" "$BUILD/tap"
	ok=0 bad=0
	for f in "${TAPS[@]}"; do
		name=$(basename "$f" .pl)
		install -d -o "$PG_USER" "$BUILD/tap/$name"
		if as_pg PERL5LIB="$PGXS_DIR/src/test/perl:$BUILD/inputs/test/perl" \
			PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
			TESTDIR="$BUILD/tap/$name" PG_TEST_PORT_DIR="$BUILD/tap" \
			TEMP_CONFIG="$BUILD/tap/temp.conf" QUERATOR_SRC="$BUILD/inputs" \
			prove -v "$f" 2>&1 | tee "$BUILD/tap/$name.log"; then
			ok=$((ok + 1))
		else
			bad=$((bad + 1))
			log "TAP $name failed; server logs in $BUILD/tap/$name/tmp_check/log"
		fi
	done
	log "TAP: $ok passed, $bad failed"
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
else
	log "TAP: no test files"
fi

TOTAL=$((PASSED + FAILED))
SUMMARY_PRINTED=yes
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 && $TOTAL -gt 0 ]]
