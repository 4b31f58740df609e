-- querator 0.1.0 -> 0.2.0: the security release (issue 11).
-- Released scripts are frozen: every schema change after 0.1.0 goes here, and
-- CREATE EXTENSION of 0.2.0 runs querator--0.1.0.sql followed by this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.2.0'" to load this file. \quit

-- Errors and visibility (issue 11, section 5): worker_status() lists the databases
-- querator serves and their counters; like pg_stat_activity's details, it is for
-- monitoring roles only (pg_monitor members; superusers and the extension owner
-- hold EXECUTE anyway).
REVOKE EXECUTE ON FUNCTION querator.worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION querator.worker_status() TO pg_monitor;

---------------------------------------------------------------- search_path (issue 11, section 1)

-- The jsonb forms of queue_produce are SQL functions that run under the
-- caller's search_path, where a schema placed before pg_catalog (for example
-- by ALTER DATABASE ... SET search_path) could make "text" name a domain of
-- its own, whose CHECK would run inside our call. Every name in their bodies
-- is now qualified, as in the other wrappers.
CREATE OR REPLACE FUNCTION querator.queue_produce(
    queue_name      text,
    payloads        jsonb[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'application/json')
RETURNS bigint[]
LANGUAGE sql
AS $$ SELECT querator.queue_produce(queue_name,
         (SELECT pg_catalog.array_agg(pg_catalog.convert_to(p::pg_catalog.text, 'UTF8') ORDER BY n)
            FROM pg_catalog.unnest(payloads) WITH ORDINALITY AS u(p, n)),
         kinds, item_references, enqueue_at, encoding) $$;

CREATE OR REPLACE FUNCTION querator.queue_produce(
    queue_name text,
    payload    jsonb,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'application/json')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce(queue_name, ARRAY[pg_catalog.convert_to(payload::pg_catalog.text, 'UTF8')],
                                     ARRAY[kind], ARRAY[reference], enqueue_at, encoding))[1] $$;

-- ---------------------------------------------------------------- webhook SSRF (issue 11, section 3)
-- Pointing a queue at a webhook url (queues_create / queues_update with webhook_url or
-- webhook_headers) needs superuser or membership in querator_webhook_admin. Roles are
-- cluster-wide: another database may have created it already, and DROP EXTENSION leaves it
-- (it may serve other databases); DROP ROLE it by hand once no database uses querator.
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'querator_webhook_admin') THEN
		CREATE ROLE querator_webhook_admin NOLOGIN;
	END IF;
END
$$;
COMMENT ON ROLE querator_webhook_admin IS 'querator: members may set webhook_url and webhook_headers of queues they administer';
