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

---------------------------------------------------------------- inputs (issue 11, section 4)

-- The text[] and jsonb[] forms of queue_produce become the C function itself,
-- which converts each payload to its UTF-8 bytes. As SQL wrappers they went
-- through unnest, which flattened a 2-D array into items before any check
-- could refuse it. Same signatures and defaults; only the body changes.
CREATE OR REPLACE FUNCTION querator.queue_produce(
    queue_name      text,
    payloads        text[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'text/plain')
RETURNS bigint[]
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_produce';

CREATE OR REPLACE FUNCTION querator.queue_produce(
    queue_name      text,
    payloads        jsonb[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'application/json')
RETURNS bigint[]
LANGUAGE c SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'querator_queue_produce';

-- Durations are bounded from 0.2.0 on (README, "Fixed limits"). A queue that
-- 0.1.0 accepted with a longer one fails every lease or produce with
-- "timestamp out of range": bring it down to the limit, and say so (a WARNING:
-- extension scripts run with client_min_messages at least warning).
DO $$
DECLARE
    q record;
BEGIN
    FOR q IN UPDATE querator.queues
                SET lease_timeout = LEAST(lease_timeout, interval '24 hours'),
                    expire_timeout = LEAST(expire_timeout, interval '10 years'),
                    webhook_backoff = LEAST(webhook_backoff, interval '24 hours'),
                    webhook_backoff_max = LEAST(webhook_backoff_max, interval '24 hours')
              WHERE lease_timeout > interval '24 hours' OR expire_timeout > interval '10 years'
                 OR webhook_backoff > interval '24 hours' OR webhook_backoff_max > interval '24 hours'
          RETURNING name
    LOOP
        RAISE WARNING 'querator: durations of queue % lowered to the limits of 0.2.0', pg_catalog.quote_literal(q.name);
    END LOOP;
END
$$;

---------------------------------------------------------------- search_path (issue 11, section 1)

-- The single jsonb form of queue_produce stays an SQL function, which runs
-- under the caller's search_path, where a schema placed before pg_catalog (for
-- example by ALTER DATABASE ... SET search_path) could make "text" name a
-- domain of its own, whose CHECK would run inside our call. Every name in its
-- body is now qualified, as in the other wrappers.
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

---------------------------------------------------------------- webhook SSRF (issue 11, section 3)
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
