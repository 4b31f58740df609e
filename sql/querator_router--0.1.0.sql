/*
 * querator_router 0.1.0: querator's SQL API in a router database, over shards
 * that each run querator, routed by PL/Proxy (docs/scaling.md).
 *
 * The shards are the partitions of the PL/Proxy cluster `querator_shards`
 * (a SERVER of the plproxy foreign data wrapper, options p0..pN-1, and
 * modular_mapping '1' so that N need not be a power of two). Shard s holds
 * every queue with a share of its partitions: a queue's partition p lives on
 * shard p mod N as the shard's own partition p / N. Ids carry their
 * partition (id >> 48), so the router translates them between the two
 * numberings and routes complete / retry / extend by the id alone; querator
 * on the shards is unchanged.
 *
 * Every shard call is its own transaction on that shard (PL/Proxy
 * autocommits): a call through the router is atomic on each shard, never
 * across shards. Nothing here is SECURITY DEFINER: PL/Proxy connects to the
 * shards as the calling role, and the shards check its privileges.
 */
\echo Use "CREATE EXTENSION querator_router" to load this file. \quit

-- Schema querator is ours alone: CREATE EXTENSION uses one that exists already,
-- and whoever owns it, may create in it or placed an object in it could shadow
-- a function of the API (an overload of queue_complete, say) and run code as
-- any role calling the router, superusers included. At this point the schema
-- holds nothing of ours yet (but the extension being created), so anything in
-- it is someone else's.
DO $$
DECLARE
    nsp record;
    found text;
BEGIN
    SELECT n.oid, n.nspowner::pg_catalog.regrole::pg_catalog.text AS owner, n.nspacl
      INTO nsp FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'querator';
    SELECT pg_catalog.string_agg(x.what, '; ') INTO found FROM (
        SELECT pg_catalog.format('it is owned by %s', nsp.owner) AS what
         WHERE nsp.owner OPERATOR(pg_catalog.<>) CURRENT_USER::pg_catalog.text
        UNION ALL
        SELECT pg_catalog.format('it grants CREATE to %s', CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                                               ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END)
          FROM pg_catalog.aclexplode(nsp.nspacl) a
         WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE' AND a.grantee OPERATOR(pg_catalog.<>) a.grantor
        UNION ALL
        SELECT pg_catalog.format('it holds %s', pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid))
          FROM pg_catalog.pg_depend d
         WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
           AND d.refobjid OPERATOR(pg_catalog.=) nsp.oid
           AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_extension'::pg_catalog.regclass) x;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'schema querator exists already and is not the installer''s alone: %', found
            USING ERRCODE = '55000',
                  DETAIL = 'Whoever can place functions in it can run code as any role calling the router.',
                  HINT = 'Drop the schema (querator itself cannot share a database with the router), then run CREATE EXTENSION querator_router again.';
    END IF;
END
$$;

CREATE SCHEMA querator_router;
GRANT USAGE ON SCHEMA querator TO PUBLIC;
GRANT USAGE ON SCHEMA querator_router TO PUBLIC;

---------------------------------------------------------------- shards and ids

-- N: the partitions p0, p1, ... of the server querator_shards.
CREATE FUNCTION querator_router.shard_count() RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    SELECT count(*) INTO n
      FROM pg_catalog.pg_foreign_server s, pg_catalog.pg_options_to_table(s.srvoptions) o
     WHERE s.srvname = 'querator_shards' AND o.option_name ~ '^p[0-9]+$';
    IF n = 0 THEN
        RAISE EXCEPTION 'router has no shards; the server querator_shards lists none'
              USING ERRCODE = '55000',
                    HINT = 'CREATE SERVER querator_shards FOREIGN DATA WRAPPER plproxy OPTIONS (modular_mapping ''1'', p0 ''host=... dbname=...'', ...), see docs/scaling.md';
    END IF;
    RETURN n;
END $$;

-- The shard's own partition number local holds the queue's partition local * n + shard.
CREATE FUNCTION querator_router.global_partition(local integer, shard integer, n integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT local * n + shard $$;

-- An id as the router shows it: the shard's id with the queue's partition in its high bits.
CREATE FUNCTION querator_router.global_id(local bigint, shard integer, n integer) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT ((local >> 48) * n + shard) << 48 | (local & 281474976710655) $$;

CREATE FUNCTION querator_router.global_ids(locals bigint[], shard integer, n integer) RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.array_agg(querator_router.global_id(l, shard, n) ORDER BY o)
      FROM pg_catalog.unnest(locals) WITH ORDINALITY AS u(l, o) $$;

-- The shard of an id, and the id as that shard knows it (a negative id is nobody's: shard 0 says so).
CREATE FUNCTION querator_router.shard_of(id bigint, n integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN id < 0 THEN 0 ELSE ((id >> 48) % n)::integer END $$;

CREATE FUNCTION querator_router.local_id(id bigint, n integer) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN id < 0 THEN id ELSE ((id >> 48) / n) << 48 | (id & 281474976710655) END $$;

-- A queue of p partitions has ceil(p / n) on every shard (a bad count goes to the shards as it is).
CREATE FUNCTION querator_router.shard_partitions(partitions integer, n integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN partitions > 0 THEN (partitions + n - 1) / n ELSE partitions END $$;

---------------------------------------------------------------- shard errors

-- True when PL/Proxy could not connect to the shard: nothing was sent to it.
CREATE FUNCTION querator_router.not_connected(state text, message text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT state = 'XX000' AND message ~ '(\] PQconnect(Start|Poll): |connect timeout to: )' $$;

-- True when the shard did not answer: PL/Proxy lost or never had the
-- connection (XX000 without "REMOTE ERROR", an error the shard raised has
-- that and the shard's SQLSTATE), or the shard ended it (FATAL, as at a crash
-- or shutdown).
CREATE FUNCTION querator_router.unreachable(state text, message text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (state = 'XX000' AND strpos(message, 'REMOTE ERROR: ') = 0) OR strpos(message, 'REMOTE FATAL: ') > 0 $$;

/*
 * Raises a shard's error as the router's: the shard's SQLSTATE, message,
 * detail and hint without PL/Proxy's prefix, and the shard's ids in the
 * message as the router's (`locals` sent to it, `globals` the caller's). An
 * unreachable shard becomes 08006 naming it. `done` says what earlier shards
 * of the same call did (they committed).
 */
CREATE FUNCTION querator_router.raise_shard_error(shard integer, state text, message text, detail text,
                                                  hint text, locals bigint[] DEFAULT NULL,
                                                  globals bigint[] DEFAULT NULL, done text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF querator_router.unreachable(state, message) THEN
        state := '08006';
        message := format('shard is unreachable; %s: %s',
                          CASE WHEN shard IS NULL THEN 'a shard of server querator_shards'
                               ELSE format('shard %s (option p%s of server querator_shards)', shard, shard) END,
                          regexp_replace(message, '^[^[]*\[[^]]*\] (REMOTE FATAL: )?', ''));
    ELSIF strpos(message, 'REMOTE ERROR: ') > 0 THEN
        message := substr(message, strpos(message, 'REMOTE ERROR: ') + length('REMOTE ERROR: '));
        FOR i IN 1 .. coalesce(array_length(locals, 1), 0) LOOP
            message := replace(message, format('''%s''', locals[i]), format('''%s''', globals[i]));
        END LOOP;
    END IF;
    IF done IS NOT NULL THEN
        detail := concat_ws(E'\n', nullif(detail, ''), done);
    END IF;
    -- RAISE takes no NULL option, and an empty one would still be printed
    IF coalesce(detail, '') = '' AND coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message;
    ELSIF coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, DETAIL = detail;
    ELSIF coalesce(detail, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, HINT = hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, DETAIL = detail, HINT = hint;
END $$;

---------------------------------------------------------------- calls on one shard (PL/Proxy)

CREATE FUNCTION querator_router.shard_produce(shard integer, queue_name text, payloads bytea[], kinds text[],
                                              item_references text[], enqueue_at timestamptz, encoding text)
RETURNS bigint[] LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON shard;
    SELECT querator.queue_produce_bytes_batch(queue_name, payloads, kinds, item_references, enqueue_at, encoding);
$$;

CREATE FUNCTION querator_router.shard_lease(shard integer, queue_name text, client_id text, complete_ids bigint[],
                                            batch_size integer, wait interval)
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text, payload bytea,
              attempts integer, lease_deadline timestamptz, created_at timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON shard;
    SELECT * FROM querator.queue_complete_and_lease(queue_name, client_id, complete_ids, batch_size, wait);
$$;

CREATE FUNCTION querator_router.shard_complete(shard integer, queue_name text, ids bigint[])
RETURNS integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON shard;
    SELECT querator.queue_complete_batch(queue_name, ids);
$$;

CREATE FUNCTION querator_router.shard_retry(shard integer, queue_name text, ids bigint[], retry_at timestamptz,
                                            dead boolean)
RETURNS integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON shard;
    SELECT querator.queue_retry_batch(queue_name, ids, retry_at, dead);
$$;

CREATE FUNCTION querator_router.shard_extend(shard integer, queue_name text, ids bigint[], lease_timeout interval)
RETURNS integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON shard;
    SELECT querator.queue_extend_batch(queue_name, ids, lease_timeout);
$$;

-- A row of queue_stats.
CREATE TYPE querator_router.stats_row AS (queue_name text, partition integer, total bigint, total_leased bigint,
    scheduled bigint, dead bigint, oldest_age interval, average_age interval, average_lease_remaining interval,
    paused boolean, produced bigint, leased bigint, completed bigint, retried bigint, lease_expired bigint,
    dead_lettered bigint, expired bigint);

CREATE FUNCTION querator_router.shard_stats(shard integer, queue_name text)
RETURNS SETOF querator_router.stats_row
LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON shard;
    SELECT * FROM querator.queue_stats(queue_name);
$$;

-- The queue catalog calls, on every shard at once (each shard commits on its own).
-- A row of queues_list and queues_info.
CREATE TYPE querator_router.queue_row AS (queue_name text, lease_timeout interval, expire_timeout interval,
    max_attempts integer, dead_queue text, reference text, partitions integer, paused boolean, owner text,
    webhook_url text, created_at timestamptz, updated_at timestamptz);

CREATE FUNCTION querator_router.all_queues_create(queue_name text, lease_timeout interval, expire_timeout interval,
    max_attempts integer, dead_queue text, reference text, partitions integer, webhook_url text,
    webhook_headers jsonb, webhook_timeout interval, webhook_concurrency integer, webhook_backoff interval,
    webhook_backoff_max interval)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queues_create(queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue,
        reference, partitions, webhook_url, webhook_headers, webhook_timeout, webhook_concurrency,
        webhook_backoff, webhook_backoff_max);
$$;

CREATE FUNCTION querator_router.all_queues_update(queue_name text, lease_timeout interval, expire_timeout interval,
    max_attempts integer, dead_queue text, reference text, partitions integer, webhook_url text,
    webhook_headers jsonb, webhook_timeout interval, webhook_concurrency integer, webhook_backoff interval,
    webhook_backoff_max interval)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queues_update(queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue,
        reference, partitions, webhook_url, webhook_headers, webhook_timeout, webhook_concurrency,
        webhook_backoff, webhook_backoff_max);
$$;

CREATE FUNCTION querator_router.all_queues_delete(queue_name text, force boolean)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queues_delete(queue_name, force);
$$;

CREATE FUNCTION querator_router.all_queue_pause(queue_name text)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queue_pause(queue_name);
$$;

CREATE FUNCTION querator_router.all_queue_resume(queue_name text)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queue_resume(queue_name);
$$;

CREATE FUNCTION querator_router.all_queue_grant(queue_name text, role_name text, privilege text)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queue_grant(queue_name, role_name, privilege);
$$;

CREATE FUNCTION querator_router.all_queue_revoke(queue_name text, role_name text, privilege text)
RETURNS SETOF integer LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT 1 FROM querator.queue_revoke(queue_name, role_name, privilege);
$$;

CREATE FUNCTION querator_router.all_queue_clear(queue_name text, clear_queue boolean, clear_scheduled boolean,
                                                 destructive boolean)
RETURNS SETOF bigint LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT querator.queue_clear(queue_name, clear_queue, clear_scheduled, destructive);
$$;

CREATE FUNCTION querator_router.all_queues_info(queue_name text)
RETURNS SETOF querator_router.queue_row
LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT * FROM querator.queues_info(queue_name);
$$;

CREATE FUNCTION querator_router.all_queues_list(pivot text, max_rows integer)
RETURNS SETOF querator_router.queue_row
LANGUAGE plproxy AS $$
    CLUSTER 'querator_shards';
    RUN ON ALL;
    SELECT * FROM querator.queues_list(pivot, max_rows);
$$;

---------------------------------------------------------------- routing

-- Ids grouped by shard, in shard order, as the shards know them (locals) and as
-- the caller gave them (globals). A NULL list, a list that is not one-dimensional
-- or holds a NULL goes to shard 0 as it is, so that querator's own error answers it.
CREATE FUNCTION querator_router.by_shard(ids bigint[], n integer)
RETURNS TABLE(shard integer, locals bigint[], globals bigint[])
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 0, ids, ids
     WHERE ids IS NULL OR array_ndims(ids) IS DISTINCT FROM 1 OR array_position(ids, NULL) IS NOT NULL
    UNION ALL
    SELECT querator_router.shard_of(g, n), array_agg(querator_router.local_id(g, n) ORDER BY o), array_agg(g ORDER BY o)
      FROM unnest(ids) WITH ORDINALITY AS u(g, o)
     WHERE array_ndims(ids) = 1 AND array_position(ids, NULL) IS NULL
     GROUP BY 1
     ORDER BY 1 $$;

/*
 * Complete (verb 'completed'), retry ('retried') or extend ('extended') ids
 * on their shards, one shard call each in shard order. All or none per
 * shard; when a shard fails, the shards before it have committed and the
 * error's detail says which.
 */
CREATE FUNCTION querator_router.act(verb text, queue_name text, ids bigint[], retry_at timestamptz DEFAULT NULL,
                                    dead boolean DEFAULT false, lease_timeout interval DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := querator_router.shard_count();
    part record;
    total integer := 0;
    done text;
    st text; msg text; det text; hnt text;
BEGIN
    FOR part IN SELECT * FROM querator_router.by_shard(ids, n) LOOP
        BEGIN
            total := total + CASE verb
                WHEN 'completed' THEN querator_router.shard_complete(part.shard, queue_name, part.locals)
                WHEN 'retried' THEN querator_router.shard_retry(part.shard, queue_name, part.locals, retry_at, dead)
                ELSE querator_router.shard_extend(part.shard, queue_name, part.locals, lease_timeout) END;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                                    hnt = PG_EXCEPTION_HINT;
            PERFORM querator_router.raise_shard_error(part.shard, st, msg, det, hnt, part.locals, part.globals,
                CASE WHEN done IS NOT NULL THEN format('the ids on shard(s) %s were %s and stay so: through the router a call is all or none per shard only', done, verb) END);
        END;
        done := concat_ws(', ', done, part.shard::text);
    END LOOP;
    RETURN total;
END $$;

CREATE SEQUENCE querator_router.produce_turn;
GRANT USAGE ON SEQUENCE querator_router.produce_turn TO PUBLIC;

/*
 * Produces the batch on one shard, taking turns over the shards (the
 * router cannot see the shards' partition estimates without a call to
 * each). A shard that cannot be connected to is passed over: nothing was
 * sent to it. A shard lost during the call is an error, as the items may
 * have committed there.
 */
CREATE FUNCTION querator_router.produce(queue_name text, payloads bytea[], kinds text[], item_references text[],
                                        enqueue_at timestamptz, encoding text)
RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := querator_router.shard_count();
    first integer := (nextval('querator_router.produce_turn') % n)::integer;
    s integer;
    st text; msg text; det text; hnt text;
BEGIN
    FOR i IN 0 .. n - 1 LOOP
        s := (first + i) % n;
        BEGIN
            RETURN querator_router.global_ids(
                querator_router.shard_produce(s, queue_name, payloads, kinds, item_references, enqueue_at, encoding),
                s, n);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                                    hnt = PG_EXCEPTION_HINT;
            IF NOT querator_router.not_connected(st, msg) THEN
                PERFORM querator_router.raise_shard_error(s, st, msg, det, hnt);
            END IF;
        END;
    END LOOP;
    RAISE EXCEPTION 'no shard is reachable; none of the % shards of server querator_shards accepts connections', n
          USING ERRCODE = '08006', DETAIL = msg;
END $$;

/*
 * Lease through the router: complete_ids first (those on one shard go with
 * the lease on that shard, in one call; those on several are completed shard
 * by shard as querator_router.act does), then one pass over the shards
 * without waiting, starting from the shard of the completes or from a hash
 * of client_id, and the first that gives items answers. With wait > 0 the
 * call then waits on one shard at a time for at most a second and moves on,
 * until wait is over. Unreachable shards are passed over, unless the
 * completes need them.
 */
CREATE FUNCTION querator_router.lease(queue_name text, client_id text, complete_ids bigint[], batch_size integer,
                                      wait interval)
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text, payload bytea,
              attempts integer, lease_deadline timestamptz, created_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := querator_router.shard_count();
    slice constant interval := '1 second';
    deadline timestamptz;
    first integer := coalesce((hashtext(client_id)::bigint & 2147483647) % n, 0);
    carried bigint[] := complete_ids;
    carried_globals bigint[];
    -- querator refuses a wait outside 0..15 minutes, or NULL: such a wait goes to the first shard as it is
    probe_wait interval := CASE WHEN wait >= '0' AND wait <= '15 minutes' THEN '0' ELSE wait END;
    s integer;
    i integer := 0;
    unreachable_in_a_row integer := 0;
    st text; msg text; det text; hnt text;
BEGIN
    IF cardinality(complete_ids) > 0 THEN
        IF (SELECT count(*) FROM querator_router.by_shard(complete_ids, n)) = 1 THEN
            SELECT b.shard, b.locals, b.globals INTO first, carried, carried_globals
              FROM querator_router.by_shard(complete_ids, n) b;
        ELSE
            PERFORM querator_router.act('completed', queue_name, complete_ids);
            carried := NULL;
        END IF;
    END IF;
    deadline := clock_timestamp() + CASE WHEN probe_wait = '0' THEN wait ELSE '0' END;
    LOOP
        s := (first + i) % n;
        BEGIN
            RETURN QUERY
                SELECT querator_router.global_id(l.id, s, n), querator_router.global_partition(l.partition, s, n),
                       l.kind, l.reference, l.encoding, l.payload, l.attempts, l.lease_deadline, l.created_at
                  FROM querator_router.shard_lease(s, queue_name, client_id, carried, batch_size,
                           CASE WHEN i < n THEN probe_wait ELSE least(deadline - clock_timestamp(), slice) END) l;
            IF FOUND THEN
                RETURN;
            END IF;
            unreachable_in_a_row := 0;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                                    hnt = PG_EXCEPTION_HINT;
            IF cardinality(carried) > 0 OR NOT querator_router.unreachable(st, msg) THEN
                PERFORM querator_router.raise_shard_error(s, st, msg, det, hnt, carried, carried_globals);
            END IF;
            unreachable_in_a_row := unreachable_in_a_row + 1;
            IF unreachable_in_a_row = n THEN
                RAISE EXCEPTION 'no shard is reachable; none of the % shards of server querator_shards answers', n
                      USING ERRCODE = '08006', DETAIL = msg;
            END IF;
        END;
        carried := NULL;
        i := i + 1;
        -- the first n calls look at every shard once; the wait goes on after them
        EXIT WHEN i >= n AND clock_timestamp() >= deadline;
    END LOOP;
END $$;

---------------------------------------------------------------- the API (schema querator, as querator's)

-- The SQL wrappers of this part name everything with its schema, as querator's
-- own single forms do: nothing in them resolves under the caller's search_path,
-- so they need no pinned one (which would cost every call a GUC frame, and keep
-- the one-line wrappers from being inlined).

-- Items. Every form reduces to one batch of bytes as querator's own forms do
-- (text as UTF-8, jsonb as it prints, json byte-for-byte), produced on one shard.
CREATE FUNCTION querator.queue_produce_bytes_batch(queue_name text, payloads bytea[], kinds text[] DEFAULT NULL,
    item_references text[] DEFAULT NULL, enqueue_at timestamptz DEFAULT NULL,
    encoding text DEFAULT 'application/octet-stream')
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT querator_router.produce(queue_name, payloads, kinds, item_references, enqueue_at,
                                   coalesce(encoding, 'application/octet-stream')) $$;

CREATE FUNCTION querator.queue_produce_text_batch(queue_name text, payloads text[], kinds text[] DEFAULT NULL,
    item_references text[] DEFAULT NULL, enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'text/plain')
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT querator_router.produce(queue_name,
        (SELECT pg_catalog.array_agg(pg_catalog.convert_to(p, 'UTF8') ORDER BY o)
           FROM pg_catalog.unnest(payloads) WITH ORDINALITY AS u(p, o)),
        kinds, item_references, enqueue_at, coalesce(encoding, 'text/plain')) $$;

CREATE FUNCTION querator.queue_produce_json_batch(queue_name text, payloads json[], kinds text[] DEFAULT NULL,
    item_references text[] DEFAULT NULL, enqueue_at timestamptz DEFAULT NULL)
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT querator_router.produce(queue_name,
        (SELECT pg_catalog.array_agg(pg_catalog.convert_to(p::pg_catalog.text, 'UTF8') ORDER BY o)
           FROM pg_catalog.unnest(payloads) WITH ORDINALITY AS u(p, o)),
        kinds, item_references, enqueue_at, 'application/json') $$;

CREATE FUNCTION querator.queue_produce(queue_name text, payloads bytea[], kinds text[] DEFAULT NULL,
    item_references text[] DEFAULT NULL, enqueue_at timestamptz DEFAULT NULL,
    encoding text DEFAULT 'application/octet-stream')
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT querator.queue_produce_bytes_batch(queue_name, payloads, kinds, item_references, enqueue_at, encoding) $$;

CREATE FUNCTION querator.queue_produce(queue_name text, payloads text[], kinds text[] DEFAULT NULL,
    item_references text[] DEFAULT NULL, enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'text/plain')
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT querator.queue_produce_text_batch(queue_name, payloads, kinds, item_references, enqueue_at, encoding) $$;

CREATE FUNCTION querator.queue_produce(queue_name text, payloads jsonb[], kinds text[] DEFAULT NULL,
    item_references text[] DEFAULT NULL, enqueue_at timestamptz DEFAULT NULL,
    encoding text DEFAULT 'application/json')
RETURNS bigint[] LANGUAGE sql AS $$
    SELECT querator.queue_produce_text_batch(queue_name, payloads::pg_catalog.text[], kinds, item_references, enqueue_at,
                                             coalesce(encoding, 'application/json')) $$;

CREATE FUNCTION querator.queue_produce_bytes(queue_name text, payload bytea, kind text DEFAULT '',
    reference text DEFAULT '', enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'application/octet-stream')
RETURNS bigint LANGUAGE sql AS $$
    SELECT (querator.queue_produce_bytes_batch(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                               enqueue_at, encoding))[1] $$;

CREATE FUNCTION querator.queue_produce_text(queue_name text, payload text, kind text DEFAULT '',
    reference text DEFAULT '', enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'text/plain')
RETURNS bigint LANGUAGE sql AS $$
    SELECT (querator.queue_produce_text_batch(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                              enqueue_at, encoding))[1] $$;

CREATE FUNCTION querator.queue_produce_json(queue_name text, payload json, kind text DEFAULT '',
    reference text DEFAULT '', enqueue_at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    SELECT (querator.queue_produce_json_batch(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                              enqueue_at))[1] $$;

CREATE FUNCTION querator.queue_produce(queue_name text, payload bytea, kind text DEFAULT '',
    reference text DEFAULT '', enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'application/octet-stream')
RETURNS bigint LANGUAGE sql AS $$
    SELECT querator.queue_produce_bytes(queue_name, payload, kind, reference, enqueue_at, encoding) $$;

CREATE FUNCTION querator.queue_produce(queue_name text, payload text, kind text DEFAULT '',
    reference text DEFAULT '', enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'text/plain')
RETURNS bigint LANGUAGE sql AS $$
    SELECT querator.queue_produce_text(queue_name, payload, kind, reference, enqueue_at, encoding) $$;

CREATE FUNCTION querator.queue_produce(queue_name text, payload jsonb, kind text DEFAULT '',
    reference text DEFAULT '', enqueue_at timestamptz DEFAULT NULL, encoding text DEFAULT 'application/json')
RETURNS bigint LANGUAGE sql AS $$
    SELECT querator.queue_produce_text(queue_name, payload::pg_catalog.text, kind, reference, enqueue_at,
                                       coalesce(encoding, 'application/json')) $$;

CREATE FUNCTION querator.queue_lease(queue_name text, client_id text, batch_size integer DEFAULT 1,
                                     wait interval DEFAULT '0')
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text, payload bytea,
              attempts integer, lease_deadline timestamptz, created_at timestamptz)
LANGUAGE sql AS $$
    SELECT * FROM querator_router.lease(queue_name, client_id, NULL, batch_size, wait) $$;

CREATE FUNCTION querator.queue_complete_and_lease(queue_name text, client_id text, complete_ids bigint[],
                                                  batch_size integer DEFAULT 1, wait interval DEFAULT '0')
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text, payload bytea,
              attempts integer, lease_deadline timestamptz, created_at timestamptz)
LANGUAGE sql AS $$
    SELECT * FROM querator_router.lease(queue_name, client_id, complete_ids, batch_size, wait) $$;

CREATE FUNCTION querator.queue_complete_batch(queue_name text, ids bigint[]) RETURNS integer
LANGUAGE sql AS $$
    SELECT querator_router.act('completed', queue_name, ids) $$;

CREATE FUNCTION querator.queue_complete(queue_name text, ids bigint[]) RETURNS integer
LANGUAGE sql AS $$
    SELECT querator_router.act('completed', queue_name, ids) $$;

CREATE FUNCTION querator.queue_complete(queue_name text, id bigint) RETURNS integer
LANGUAGE sql AS $$
    SELECT querator_router.act('completed', queue_name, ARRAY[id]) $$;

CREATE FUNCTION querator.queue_retry_batch(queue_name text, ids bigint[], retry_at timestamptz DEFAULT NULL,
                                           dead boolean DEFAULT false) RETURNS integer
LANGUAGE sql AS $$
    SELECT querator_router.act('retried', queue_name, ids, retry_at, dead) $$;

CREATE FUNCTION querator.queue_retry(queue_name text, ids bigint[], retry_at timestamptz DEFAULT NULL,
                                     dead boolean DEFAULT false) RETURNS integer
LANGUAGE sql AS $$
    SELECT querator_router.act('retried', queue_name, ids, retry_at, dead) $$;

CREATE FUNCTION querator.queue_retry(queue_name text, id bigint, retry_at timestamptz DEFAULT NULL,
                                     dead boolean DEFAULT false) RETURNS integer
LANGUAGE sql AS $$
    SELECT querator_router.act('retried', queue_name, ARRAY[id], retry_at, dead) $$;

CREATE FUNCTION querator.queue_extend_batch(queue_name text, ids bigint[], lease_timeout interval DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
    SELECT querator_router.act('extended', queue_name, ids, lease_timeout => lease_timeout) $$;

CREATE FUNCTION querator.queue_extend(queue_name text, ids bigint[], lease_timeout interval DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
    SELECT querator_router.act('extended', queue_name, ids, lease_timeout => lease_timeout) $$;

CREATE FUNCTION querator.queue_extend(queue_name text, id bigint, lease_timeout interval DEFAULT NULL)
RETURNS integer LANGUAGE sql AS $$
    SELECT querator_router.act('extended', queue_name, ARRAY[id], lease_timeout => lease_timeout) $$;

-- One row per partition of the queue (partition p from shard p mod n), as querator's.
CREATE FUNCTION querator_router.stats(name text)
RETURNS SETOF querator_router.stats_row
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := querator_router.shard_count();
    st text; msg text; det text; hnt text;
BEGIN
    RETURN QUERY
        SELECT t.queue_name, querator_router.global_partition(t.partition, s, n), t.total, t.total_leased,
               t.scheduled, t.dead, t.oldest_age, t.average_age, t.average_lease_remaining, t.paused, t.produced,
               t.leased, t.completed, t.retried, t.lease_expired, t.dead_lettered, t.expired
          FROM generate_series(0, n - 1) AS s, querator_router.shard_stats(s, name) AS t
         ORDER BY 2;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    PERFORM querator_router.raise_shard_error(NULL, st, msg, det, hnt);
END $$;

CREATE FUNCTION querator.queue_stats(queue_name text)
RETURNS SETOF querator_router.stats_row
LANGUAGE sql STABLE AS $$ SELECT * FROM querator_router.stats($1) $$;

-- Queues: the same call on every shard. Each shard commits on its own, so
-- when one fails the others keep the change; the error's detail says so.
CREATE FUNCTION querator_router.on_every_shard_failed(st text, msg text, det text, hnt text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT querator_router.raise_shard_error(NULL, st, msg, det, hnt, done =>
        'the shards that succeeded keep the change (each shard commits on its own): repeat the call, or undo it, once every shard answers') $$;

CREATE FUNCTION querator.queues_create(queue_name text, lease_timeout interval DEFAULT '1 minute',
    expire_timeout interval DEFAULT NULL, max_attempts integer DEFAULT 0, dead_queue text DEFAULT NULL,
    reference text DEFAULT '', partitions integer DEFAULT 1, webhook_url text DEFAULT NULL,
    webhook_headers jsonb DEFAULT NULL, webhook_timeout interval DEFAULT NULL,
    webhook_concurrency integer DEFAULT NULL, webhook_backoff interval DEFAULT NULL,
    webhook_backoff_max interval DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    PERFORM count(*) FROM querator_router.all_queues_create(queue_name, lease_timeout, expire_timeout,
        max_attempts, dead_queue, reference,
        querator_router.shard_partitions(coalesce(partitions, 1), querator_router.shard_count()), webhook_url,
        webhook_headers, webhook_timeout, webhook_concurrency, webhook_backoff, webhook_backoff_max);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    PERFORM querator_router.on_every_shard_failed(st, msg, det, hnt);
END $$;

CREATE FUNCTION querator.queues_update(queue_name text, lease_timeout interval DEFAULT NULL,
    expire_timeout interval DEFAULT NULL, max_attempts integer DEFAULT NULL, dead_queue text DEFAULT NULL,
    reference text DEFAULT NULL, partitions integer DEFAULT NULL, webhook_url text DEFAULT NULL,
    webhook_headers jsonb DEFAULT NULL, webhook_timeout interval DEFAULT NULL,
    webhook_concurrency integer DEFAULT NULL, webhook_backoff interval DEFAULT NULL,
    webhook_backoff_max interval DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    PERFORM count(*) FROM querator_router.all_queues_update(queue_name, lease_timeout, expire_timeout,
        max_attempts, dead_queue, reference,
        querator_router.shard_partitions(partitions, querator_router.shard_count()), webhook_url,
        webhook_headers, webhook_timeout, webhook_concurrency, webhook_backoff, webhook_backoff_max);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    PERFORM querator_router.on_every_shard_failed(st, msg, det, hnt);
END $$;

-- The calls on every shard but the definitions: what queue_clear removed, summed
-- over the shards (the others return nothing: 0).
CREATE FUNCTION querator_router.everywhere(call text, queue_name text, force boolean DEFAULT NULL,
                                           role_name text DEFAULT NULL, privilege text DEFAULT NULL,
                                           clear_queue boolean DEFAULT NULL, clear_scheduled boolean DEFAULT NULL,
                                           destructive boolean DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    removed bigint := 0;
    st text; msg text; det text; hnt text;
BEGIN
    CASE call
    WHEN 'queues_delete' THEN PERFORM count(*) FROM querator_router.all_queues_delete(queue_name, force);
    WHEN 'queue_pause' THEN PERFORM count(*) FROM querator_router.all_queue_pause(queue_name);
    WHEN 'queue_resume' THEN PERFORM count(*) FROM querator_router.all_queue_resume(queue_name);
    WHEN 'queue_grant' THEN PERFORM count(*) FROM querator_router.all_queue_grant(queue_name, role_name, privilege);
    WHEN 'queue_revoke' THEN PERFORM count(*) FROM querator_router.all_queue_revoke(queue_name, role_name, privilege);
    WHEN 'queue_clear' THEN
        SELECT sum(c) INTO removed
          FROM querator_router.all_queue_clear(queue_name, clear_queue, clear_scheduled, destructive) AS c;
    END CASE;
    RETURN removed;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    PERFORM querator_router.on_every_shard_failed(st, msg, det, hnt);
END $$;

CREATE FUNCTION querator.queue_clear(queue_name text, queue boolean DEFAULT true, scheduled boolean DEFAULT false,
                                     destructive boolean DEFAULT false) RETURNS bigint
LANGUAGE sql AS $$
    SELECT querator_router.everywhere('queue_clear', queue_name, clear_queue => queue, clear_scheduled => scheduled,
                                      destructive => destructive) $$;

CREATE FUNCTION querator.queues_delete(queue_name text, force boolean DEFAULT false) RETURNS void
LANGUAGE sql AS $$
    SELECT querator_router.everywhere('queues_delete', queue_name, force => force) $$;

CREATE FUNCTION querator.queue_pause(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT querator_router.everywhere('queue_pause', queue_name) $$;

CREATE FUNCTION querator.queue_resume(queue_name text) RETURNS void
LANGUAGE sql AS $$ SELECT querator_router.everywhere('queue_resume', queue_name) $$;

CREATE FUNCTION querator.queue_grant(queue_name text, role_name text, privilege text) RETURNS void
LANGUAGE sql AS $$
    SELECT querator_router.everywhere('queue_grant', queue_name, role_name => role_name, privilege => privilege) $$;

CREATE FUNCTION querator.queue_revoke(queue_name text, role_name text, privilege text) RETURNS void
LANGUAGE sql AS $$
    SELECT querator_router.everywhere('queue_revoke', queue_name, role_name => role_name, privilege => privilege) $$;

-- A queue's row merges the shards' rows: partitions summed, paused if paused
-- anywhere, the earliest created_at and latest updated_at. Shards that
-- disagree on a setting (a call that failed half-way) show as two rows.
CREATE FUNCTION querator_router.merged_queues(rows_of_shards querator_router.queue_row[])
RETURNS SETOF querator_router.queue_row
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.queue_name, r.lease_timeout, r.expire_timeout, r.max_attempts, r.dead_queue, r.reference,
           sum(r.partitions)::integer, bool_or(r.paused), r.owner, r.webhook_url, min(r.created_at),
           max(r.updated_at)
      FROM unnest(rows_of_shards) AS r
     GROUP BY r.queue_name, r.lease_timeout, r.expire_timeout, r.max_attempts, r.dead_queue, r.reference,
              r.owner, r.webhook_url
     ORDER BY r.queue_name COLLATE "C" $$;

CREATE FUNCTION querator.queues_list(pivot text DEFAULT NULL, "limit" integer DEFAULT 1000)
RETURNS SETOF querator_router.queue_row
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN QUERY SELECT * FROM querator_router.merged_queues(ARRAY(
        SELECT r FROM querator_router.all_queues_list(pivot, "limit") r)) LIMIT "limit";
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    PERFORM querator_router.raise_shard_error(NULL, st, msg, det, hnt);
END $$;

CREATE FUNCTION querator.queues_info(queue_name text)
RETURNS SETOF querator_router.queue_row
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    RETURN QUERY SELECT * FROM querator_router.merged_queues(ARRAY(
        SELECT r FROM querator_router.all_queues_info(queue_name) r));
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hnt = PG_EXCEPTION_HINT;
    PERFORM querator_router.raise_shard_error(NULL, st, msg, det, hnt);
END $$;

-- Every queue the current role may see, one row per partition (as querator's view).
CREATE VIEW querator.stats AS
    SELECT s.*
      FROM querator.queues_list(NULL, 10000) AS q,
           LATERAL querator.queue_stats(q.queue_name) AS s;
GRANT SELECT ON querator.stats TO PUBLIC;
