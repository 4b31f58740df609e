#!/usr/bin/env bash
# The run command: installs what is missing, builds and installs querator, then
# starts (or restarts, so a freshly installed library is loaded) a local cluster
# under var/, creates database "querator" with the extension, and runs a demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
install_packages
build_and_install

VAR=$(pg_workdir var /var/lib/postgresql/querator-var)
DATADIR=$VAR/cluster
SOCKDIR=$VAR/run
PORT=${QUERATOR_PORT:-5499}

mkdir -p "$VAR" "$SOCKDIR"
chown "$PG_USER:" "$VAR" "$SOCKDIR"

if [[ ! -f $DATADIR/PG_VERSION ]]; then
	log "creating a cluster in $DATADIR"
	init_cluster "$DATADIR" "$PORT" "$SOCKDIR" "listen_addresses = 'localhost'"
else
	# QUERATOR_PORT may differ from the last run.
	sed -i "s/^port = .*/port = $PORT/" "$DATADIR/postgresql.conf"
fi

# Restart rather than reuse: `make install` may have replaced querator.so.
# The HTTP/JSON API on localhost, for the demo database; requests without a key act as
# querator_demo (granted the demo queues below). Added once, also to an older cluster.
HTTP_PORT=${QUERATOR_HTTP_PORT:-2319}
if ! grep -q '^querator.http_listen_addresses' "$DATADIR/postgresql.conf"; then
	cat >>"$DATADIR/postgresql.conf" <<EOF_CONF
querator.http_listen_addresses = 'localhost'
querator.http_port = $HTTP_PORT
querator.http_database = 'querator'
querator.http_anonymous_role = 'querator_demo'
EOF_CONF
else
	sed -i "s/^querator.http_port = .*/querator.http_port = $HTTP_PORT/" "$DATADIR/postgresql.conf"
fi

stop_cluster "$DATADIR" fast
port_in_use "$PORT" "$SOCKDIR" && die "port $PORT is taken; set QUERATOR_PORT to another port"
log "starting the cluster on port $PORT"
start_cluster "$DATADIR" "$VAR/cluster.log"

PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -U "$PG_USER")
if [[ -z $(as_pg "${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'querator'") ]]; then
	as_pg "${PSQL[@]}" -d postgres -c 'CREATE DATABASE querator'
fi

log "demo"
as_pg "${PSQL[@]}" -d querator <<'SQL'
CREATE EXTENSION IF NOT EXISTS querator;
-- Idempotent: a second run finds the queue already there (42710).
DO $$ BEGIN
    PERFORM querator.queues_create('demo');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
\echo produce two items
SELECT querator.queue_produce('demo', ARRAY['hello', 'world']::text[]) AS ids;
\echo lease one
SELECT id, attempts, convert_from(payload, 'UTF8') AS payload
  FROM querator.queue_lease('demo', 'demo-client', 1) \gset leased_
SELECT :leased_id AS id, :leased_attempts AS attempts, :'leased_payload' AS payload;
\echo complete it
SELECT querator.queue_complete('demo', ARRAY[:leased_id]::bigint[]) AS completed;
\echo the queue
\x on
SELECT * FROM querator.queues_info('demo');
\x off
-- The HTTP API's anonymous role (local demo only): Querator's quick-start queue, all rights.
DO $$ BEGIN
    CREATE ROLE querator_demo NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    PERFORM querator.queues_create('email-queue');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
SELECT count(querator.queue_grant('email-queue', 'querator_demo', p)) AS granted
  FROM unnest(ARRAY['produce', 'consume', 'admin']) p;
SQL

cat <<EOF_MSG

querator is running (data in $DATADIR, log in $VAR/cluster.log). Connect with:
  psql -h $SOCKDIR -p $PORT -U $PG_USER querator
The HTTP/JSON API serves database querator at http://localhost:$HTTP_PORT/v1/ (requests
without an API key act as role querator_demo), for example:
  curl -X POST localhost:$HTTP_PORT/v1/queue.lease -d '{"queue_name": "email-queue", "batch_size": 1, "client_id": "me"}'
Stop it with: scripts/stop.sh
EOF_MSG
