#!/usr/bin/env bash
# Stops the cluster that scripts/run.sh started; its data stays under var/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
DATADIR=$(pg_workdir var /var/lib/postgresql/querator-var)/cluster
if [[ -f $DATADIR/postmaster.pid ]]; then
	stop_cluster "$DATADIR" fast
	log "stopped the cluster in $DATADIR"
else
	log "no cluster running in $DATADIR"
fi
