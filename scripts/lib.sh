# Shared by test.sh, run.sh and stop.sh: paths, package list, build, cluster helpers.
# Sourced, not run; the caller sets `set -euo pipefail`.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build always uses the system's pg_config (headers, PGXS).
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
# QUERATOR_PG_ROOT=DIR runs against a private copy of the PostgreSQL server under
# DIR instead of the system one, so several checkouts can build, install and test
# at once without replacing each other's querator.so. PostgreSQL's binaries find
# their share/ and lib/ relative to themselves, so a copied tree just works.
PG_ROOT=${QUERATOR_PG_ROOT:-}
PG_BIN=$PG_ROOT/usr/lib/postgresql/15/bin
PGXS_DIR=$PG_ROOT/usr/lib/postgresql/15/lib/pgxs
# PostgreSQL refuses to run as root, so servers and clients run as this user.
PG_USER=postgres

# Everything a fresh Debian 12 needs to build querator and run every test layer.
# python3-psycopg2 and nodejs run the driver examples (test/t/091); npm comes with
# some nodejs builds (NodeSource's, which Debian's npm package conflicts with), so
# Debian's npm only when there is no npm command. The HTTP API builds with libmicrohttpd,
# nlohmann-json and libpq; its test (test/t/094) drives it with curl, finds its
# process with pgrep (procps) and makes a certificate with openssl. The router
# (querator_router, test/t/092) needs PL/Proxy.
APT_PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-client-15 libipc-run-perl
	libcurl4-openssl-dev libmicrohttpd-dev nlohmann-json3-dev libpq-dev make g++ python3 python3-psycopg2 nodejs
	curl procps openssl postgresql-15-plproxy)
command -v npm >/dev/null || APT_PACKAGES+=(npm)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
	[[ $(id -u) -eq 0 ]] || die "run as root (sudo $0): it installs packages and the extension"
}

# apt-get only when something is missing, so a second run needs no network.
install_packages() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	log "installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Builds and installs as root; warnings are fatal in CI.
build_and_install() {
	local werror=()
	[[ ${CI:-} == true ]] && werror=(WERROR=1)
	log "building querator${werror:+ (warnings fatal)}"
	make -C "$ROOT" -s -j2 PG_CONFIG="$PG_CONFIG" "${werror[@]}"
	if [[ -n $PG_ROOT ]]; then
		copy_server_tree
		make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$PG_ROOT" >/dev/null
	else
		make -C "$ROOT" -s install PG_CONFIG="$PG_CONFIG" >/dev/null
	fi
}

# Mirrors the installed PostgreSQL 15 server into $PG_ROOT (see PG_ROOT): copied
# once, then topped up with the files of packages installed since (plproxy for
# the router tests), never replacing a file, so the copy's querator stays.
copy_server_tree() {
	if [[ ! -x $PG_BIN/postgres ]]; then
		log "copying the PostgreSQL server into $PG_ROOT"
		mkdir -p "$PG_ROOT/usr/lib/postgresql" "$PG_ROOT/usr/share/postgresql"
		chmod 755 "$PG_ROOT"
	fi
	cp -an /usr/lib/postgresql/15 "$PG_ROOT/usr/lib/postgresql/"
	cp -an /usr/share/postgresql/15 "$PG_ROOT/usr/share/postgresql/"
}

# Runs a command as the postgres user with the PostgreSQL 15 tools first on PATH.
# From / so a cwd the postgres user cannot read (e.g. /root/...) does not matter.
as_pg() {
	(cd / && runuser -u "$PG_USER" -- env PATH="$PG_BIN:/usr/local/bin:/usr/bin:/bin" "$@")
}

# A directory for postgres-owned state: $ROOT/NAME when the postgres user can
# reach the checkout, else FALLBACK (a checkout under /root is not traversable).
pg_workdir() {
	local name=$1 fallback=$2
	if as_pg test -x "$ROOT" && as_pg test -r "$ROOT"; then
		echo "$ROOT/$name"
	else
		echo "$fallback"
	fi
}

# True if something already uses PORT: a TCP listener on localhost or a socket in SOCKDIR.
port_in_use() {
	local port=$1 sockdir=$2
	[[ -e $sockdir/.s.PGSQL.$port ]] && return 0
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# initdb with settings that keep test output stable (C locale, UTF8) and that
# every querator cluster needs (the library preloaded). Extra settings follow as args.
init_cluster() {
	local datadir=$1 port=$2 sockdir=$3 setting
	shift 3
	as_pg "$PG_BIN/initdb" -D "$datadir" -U "$PG_USER" --locale=C -E UTF8 \
		--auth-local=trust --auth-host=scram-sha-256 >/dev/null
	{
		echo "# querator scripts"
		echo "port = $port"
		echo "unix_socket_directories = '$sockdir'"
		echo "shared_preload_libraries = 'querator'"
		for setting in "$@"; do echo "$setting"; done
	} >>"$datadir/postgresql.conf"
}

start_cluster() {
	local datadir=$1 logfile=$2
	as_pg "$PG_BIN/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 start >/dev/null ||
		{ tail -n 30 "$logfile" >&2; die "could not start the cluster in $datadir"; }
}

# Stops the postmaster of DATADIR if one is running; quiet otherwise.
stop_cluster() {
	local datadir=$1 mode=${2:-fast}
	[[ -f $datadir/postmaster.pid ]] || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$datadir" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}
