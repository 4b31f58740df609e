/* querator 0.1.0: durable lease queues. Frozen once released; changes arrive as upgrade scripts. */
\echo Use "CREATE EXTENSION querator" to load this file. \quit

-- Refuses CREATE EXTENSION unless the library was preloaded (the worker and
-- the shared-memory state need shared_preload_libraries).
CREATE FUNCTION querator._check_preloaded() RETURNS void
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_check_preloaded';
SELECT querator._check_preloaded();

-- Item tables of every partition live here, named from internal ids only.
CREATE SCHEMA querator_data;
REVOKE ALL ON SCHEMA querator_data FROM PUBLIC;

CREATE SEQUENCE querator.queue_id_seq AS integer;

-- The queue catalog. Kept by pg_dump (pg_extension_config_dump below).
CREATE TABLE querator.queues (
    id             integer PRIMARY KEY DEFAULT nextval('querator.queue_id_seq'),
    name           text NOT NULL UNIQUE,
    lease_timeout  interval NOT NULL,
    expire_timeout interval,
    max_attempts   integer NOT NULL DEFAULT 0,
    dead_queue     text,
    reference      text NOT NULL DEFAULT '',
    partitions     integer NOT NULL DEFAULT 1,
    paused         boolean NOT NULL DEFAULT false,
    owner          text NOT NULL,          -- role name of the creator (names survive pg_dump/restore)
    webhook_url    text,
    webhook_headers jsonb NOT NULL DEFAULT '{}',
    webhook_timeout interval NOT NULL DEFAULT '10 seconds',
    webhook_concurrency integer NOT NULL DEFAULT 8,
    webhook_backoff interval NOT NULL DEFAULT '1 second',
    webhook_backoff_max interval NOT NULL DEFAULT '5 minutes',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE querator.queue_id_seq OWNED BY querator.queues.id;
SELECT pg_catalog.pg_extension_config_dump('querator.queues', '');
SELECT pg_catalog.pg_extension_config_dump('querator.queue_id_seq', '');
REVOKE ALL ON querator.queues FROM PUBLIC;

-- Per-queue privileges: produce, consume (lease, complete, retry, extend), admin.
CREATE TABLE querator.queue_grants (
    queue_name text NOT NULL,
    role_name  text NOT NULL,
    privilege  text NOT NULL CHECK (privilege IN ('produce', 'consume', 'admin')),
    PRIMARY KEY (queue_name, role_name, privilege)
);
SELECT pg_catalog.pg_extension_config_dump('querator.queue_grants', '');
REVOKE ALL ON querator.queue_grants FROM PUBLIC;

---------------------------------------------------------------- queues

CREATE FUNCTION querator.queues_create(
    queue_name     text,
    lease_timeout  interval DEFAULT '1 minute',
    expire_timeout interval DEFAULT NULL,
    max_attempts   integer  DEFAULT 0,
    dead_queue     text     DEFAULT NULL,
    reference      text     DEFAULT '',
    partitions     integer  DEFAULT 1,
    webhook_url    text     DEFAULT NULL,
    webhook_headers jsonb   DEFAULT NULL,
    webhook_timeout interval DEFAULT NULL,
    webhook_concurrency integer DEFAULT NULL,
    webhook_backoff interval DEFAULT NULL,
    webhook_backoff_max interval DEFAULT NULL)
RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queues_create';

CREATE FUNCTION querator.queues_update(
    queue_name     text,
    lease_timeout  interval DEFAULT NULL,
    expire_timeout interval DEFAULT NULL,
    max_attempts   integer  DEFAULT NULL,
    dead_queue     text     DEFAULT NULL,
    reference      text     DEFAULT NULL,
    partitions     integer  DEFAULT NULL,
    webhook_url    text     DEFAULT NULL,
    webhook_headers jsonb   DEFAULT NULL,
    webhook_timeout interval DEFAULT NULL,
    webhook_concurrency integer DEFAULT NULL,
    webhook_backoff interval DEFAULT NULL,
    webhook_backoff_max interval DEFAULT NULL)
RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queues_update';

CREATE FUNCTION querator.queues_delete(queue_name text, force boolean DEFAULT false)
RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queues_delete';

CREATE FUNCTION querator.queues_list(pivot text DEFAULT NULL, "limit" integer DEFAULT 1000)
RETURNS TABLE(queue_name text, lease_timeout interval, expire_timeout interval,
              max_attempts integer, dead_queue text, reference text, partitions integer,
              paused boolean, owner text, webhook_url text,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queues_list';

CREATE FUNCTION querator.queues_info(queue_name text)
RETURNS TABLE(queue_name text, lease_timeout interval, expire_timeout interval,
              max_attempts integer, dead_queue text, reference text, partitions integer,
              paused boolean, owner text, webhook_url text,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queues_info';

---------------------------------------------------------------- items

-- The one producing function; the overloads below only convert the payload.
CREATE FUNCTION querator.queue_produce(
    queue_name      text,
    payloads        bytea[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'application/octet-stream')
RETURNS bigint[]
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_produce';

CREATE FUNCTION querator.queue_produce(
    queue_name      text,
    payloads        text[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'text/plain')
RETURNS bigint[]
LANGUAGE sql
AS $$ SELECT querator.queue_produce(queue_name,
         (SELECT pg_catalog.array_agg(pg_catalog.convert_to(p, 'UTF8') ORDER BY n)
            FROM pg_catalog.unnest(payloads) WITH ORDINALITY AS u(p, n)),
         kinds, item_references, enqueue_at, encoding) $$;

CREATE FUNCTION querator.queue_produce(
    queue_name      text,
    payloads        jsonb[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'application/json')
RETURNS bigint[]
LANGUAGE sql
AS $$ SELECT querator.queue_produce(queue_name,
         (SELECT pg_catalog.array_agg(pg_catalog.convert_to(p::text, 'UTF8') ORDER BY n)
            FROM pg_catalog.unnest(payloads) WITH ORDINALITY AS u(p, n)),
         kinds, item_references, enqueue_at, encoding) $$;

CREATE FUNCTION querator.queue_produce(
    queue_name text,
    payload    bytea,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'application/octet-stream')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce(queue_name, ARRAY[payload], ARRAY[kind],
                                     ARRAY[reference], enqueue_at, encoding))[1] $$;

CREATE FUNCTION querator.queue_produce(
    queue_name text,
    payload    text,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'text/plain')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce(queue_name, ARRAY[pg_catalog.convert_to(payload, 'UTF8')],
                                     ARRAY[kind], ARRAY[reference], enqueue_at, encoding))[1] $$;

CREATE FUNCTION querator.queue_produce(
    queue_name text,
    payload    jsonb,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'application/json')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce(queue_name, ARRAY[pg_catalog.convert_to(payload::text, 'UTF8')],
                                     ARRAY[kind], ARRAY[reference], enqueue_at, encoding))[1] $$;

CREATE FUNCTION querator.queue_lease(
    queue_name text,
    client_id  text,
    batch_size integer  DEFAULT 1,
    wait       interval DEFAULT '0')
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text,
              payload bytea, attempts integer, lease_deadline timestamptz, created_at timestamptz)
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_lease';

CREATE FUNCTION querator.queue_complete(queue_name text, ids bigint[])
RETURNS integer
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_complete';

CREATE FUNCTION querator.queue_complete(queue_name text, id bigint)
RETURNS integer
LANGUAGE sql
AS $$ SELECT querator.queue_complete(queue_name, ARRAY[id]) $$;

CREATE FUNCTION querator.queue_retry(
    queue_name text,
    ids        bigint[],
    retry_at   timestamptz DEFAULT NULL,
    dead       boolean     DEFAULT false)
RETURNS integer
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_retry';

CREATE FUNCTION querator.queue_retry(
    queue_name text,
    id         bigint,
    retry_at   timestamptz DEFAULT NULL,
    dead       boolean     DEFAULT false)
RETURNS integer
LANGUAGE sql
AS $$ SELECT querator.queue_retry(queue_name, ARRAY[id], retry_at, dead) $$;

CREATE FUNCTION querator.queue_extend(
    queue_name    text,
    ids           bigint[],
    lease_timeout interval DEFAULT NULL)
RETURNS integer
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_extend';

CREATE FUNCTION querator.queue_extend(
    queue_name    text,
    id            bigint,
    lease_timeout interval DEFAULT NULL)
RETURNS integer
LANGUAGE sql
AS $$ SELECT querator.queue_extend(queue_name, ARRAY[id], lease_timeout) $$;

---------------------------------------------------------------- storage lists (read-only)

-- The first 200 bytes of a text or JSON payload, readable; NULL for other encodings.
CREATE FUNCTION querator.payload_preview(payload bytea, encoding text) RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_payload_preview';

CREATE FUNCTION querator.storage_items_list(queue_name text, pivot bigint DEFAULT NULL,
                                            "limit" integer DEFAULT 100)
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text,
              payload bytea, attempts integer, created_at timestamptz,
              expire_deadline timestamptz, source_id bigint,
              leased boolean, lease_deadline timestamptz, client_id text, last_error text,
              payload_preview text)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_storage_items_list';

CREATE FUNCTION querator.storage_scheduled_list(queue_name text, pivot bigint DEFAULT NULL,
                                                "limit" integer DEFAULT 100)
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text,
              payload bytea, attempts integer, created_at timestamptz,
              expire_deadline timestamptz, source_id bigint, enqueue_at timestamptz, last_error text,
              payload_preview text)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_storage_scheduled_list';

CREATE FUNCTION querator.storage_dead_list(queue_name text, pivot bigint DEFAULT NULL,
                                           "limit" integer DEFAULT 100)
RETURNS TABLE(id bigint, partition integer, kind text, reference text, encoding text,
              payload bytea, attempts integer, created_at timestamptz,
              expire_deadline timestamptz, source_id bigint, dead_at timestamptz,
              reason text, last_error text, payload_preview text)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_storage_dead_list';

---------------------------------------------------------------- background worker

CREATE FUNCTION querator.worker_status()
RETURNS TABLE(database text, running boolean, pid integer, started_at timestamptz,
              last_run timestamptz, next_wakeup timestamptz, rounds bigint,
              expired_leases bigint, promoted bigint, expired_items bigint, dead_lettered bigint)
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_worker_status';

-- Asks the launcher, once this CREATE EXTENSION commits, to start this database's worker.
CREATE FUNCTION querator._request_worker() RETURNS void
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_request_worker';
SELECT querator._request_worker();

---------------------------------------------------------------- operations and access

CREATE FUNCTION querator.queue_pause(queue_name text) RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_pause';

CREATE FUNCTION querator.queue_resume(queue_name text) RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_resume';

CREATE FUNCTION querator.queue_grant(queue_name text, role_name text, privilege text) RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_grant';

CREATE FUNCTION querator.queue_revoke(queue_name text, role_name text, privilege text) RETURNS void
LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_revoke';

-- Who may create queues is decided with plain GRANT EXECUTE on this function.
REVOKE EXECUTE ON FUNCTION querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval) FROM PUBLIC;

CREATE FUNCTION querator.queue_clear(queue_name text, queue boolean DEFAULT true, scheduled boolean DEFAULT false,
                                     destructive boolean DEFAULT false)
RETURNS bigint
LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_clear';

CREATE FUNCTION querator.queue_redrive(queue_name text, ids bigint[] DEFAULT NULL,
                                       dead_before timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_redrive';

CREATE FUNCTION querator.queue_stats(queue_name text)
RETURNS TABLE(queue_name text, partition integer, total bigint, total_leased bigint, scheduled bigint,
              dead bigint, oldest_age interval, average_age interval, average_lease_remaining interval,
              paused boolean, produced bigint, leased bigint, completed bigint, retried bigint,
              lease_expired bigint, dead_lettered bigint, expired bigint)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_queue_stats';

-- Every queue the current role may see, one row per partition.
CREATE VIEW querator.stats AS
    SELECT s.*
      FROM querator.queues_list(NULL, 10000) AS q,
           LATERAL querator.queue_stats(q.queue_name) AS s;

-- Any role may call the API; each function checks the caller's privileges on the queue.
GRANT USAGE ON SCHEMA querator TO PUBLIC;
GRANT SELECT ON querator.stats TO PUBLIC;

-- Webhook delivery per webhook queue of this database, since server start (queues the caller may see).
CREATE FUNCTION querator.webhook_status()
RETURNS TABLE(queue_name text, deliveries bigint, failures bigint, last_status integer, last_error text,
              last_delivery_at timestamptz, in_flight integer)
LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'querator_webhook_status';

-- Internal: called by this script only.
REVOKE EXECUTE ON FUNCTION querator._check_preloaded() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION querator._request_worker() FROM PUBLIC;
