-- querator 0.1.0 -> 0.2.0: the security release (issue 11).
-- Released scripts are frozen: every schema change after 0.1.0 goes here, and
-- CREATE EXTENSION of 0.2.0 runs querator--0.1.0.sql followed by this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.2.0'" to load this file. \quit

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
