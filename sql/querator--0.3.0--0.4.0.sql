-- querator 0.3.0 -> 0.4.0.
-- 0.3.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.4.0 runs
-- querator--0.1.0.sql, the upgrade scripts up to 0.3.0 and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.4.0'" to load this file. \quit

---------------------------------------------------------------- drivers (issue 18)
-- One signature per name. Drivers that send parameters untyped (node-postgres,
-- JDBC setObject, PHP PDO, pgx in some modes) leave PostgreSQL to choose among
-- overloads that differ only in a parameter's type, which it cannot do
-- (queue_complete: 42725 "not unique") or does wrongly (queue_produce with a
-- JSON object or a binary buffer picks the text form). Each name below has one
-- signature, so an untyped parameter takes its declared type. The overloaded
-- names stay for typed callers: dropping them would fail on users' dependent
-- objects and lose their GRANTs. EXECUTE is PUBLIC's, as for the old names:
-- every call checks the caller's privilege on the queue itself.
--
-- The batch forms are the C function itself, which also takes json[] (a json
-- value is its text, kept exactly as given once json_in has validated it: a
-- JSON payload comes back byte-for-byte, where jsonb normalises it). The
-- single forms are SQL wrappers over them that pass their argument on as it is,
-- as the 0.1.0 -> 0.2.0 script explains: nothing left to resolve under the
-- caller's search_path, and the planner inlines them.
CREATE FUNCTION querator.queue_produce_json_batch(
    queue_name      text,
    payloads        json[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL)
RETURNS bigint[]
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_produce';

CREATE FUNCTION querator.queue_produce_text_batch(
    queue_name      text,
    payloads        text[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'text/plain')
RETURNS bigint[]
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_produce';

CREATE FUNCTION querator.queue_produce_bytes_batch(
    queue_name      text,
    payloads        bytea[],
    kinds           text[]      DEFAULT NULL,
    item_references text[]      DEFAULT NULL,
    enqueue_at      timestamptz DEFAULT NULL,
    encoding        text        DEFAULT 'application/octet-stream')
RETURNS bigint[]
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_produce';

CREATE FUNCTION querator.queue_produce_json(
    queue_name text,
    payload    json,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce_json_batch(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                                enqueue_at))[1] $$;

CREATE FUNCTION querator.queue_produce_text(
    queue_name text,
    payload    text,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'text/plain')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce_text_batch(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                                enqueue_at, encoding))[1] $$;

CREATE FUNCTION querator.queue_produce_bytes(
    queue_name text,
    payload    bytea,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'application/octet-stream')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce_bytes_batch(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                                 enqueue_at, encoding))[1] $$;

-- The id-list forms under their own names (the single-id forms of queue_complete,
-- queue_retry and queue_extend make an untyped array ambiguous).
CREATE FUNCTION querator.queue_complete_batch(queue_name text, ids bigint[])
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_complete';

CREATE FUNCTION querator.queue_retry_batch(
    queue_name text,
    ids        bigint[],
    retry_at   timestamptz DEFAULT NULL,
    dead       boolean     DEFAULT false)
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_retry';

CREATE FUNCTION querator.queue_extend_batch(
    queue_name    text,
    ids           bigint[],
    lease_timeout interval DEFAULT NULL)
RETURNS integer
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queue_extend';

-- A payload as json when its encoding is a JSON media type (application/json,
-- any +json suffix, parameters ignored), else NULL; also NULL for bytes that are
-- not valid UTF-8 JSON (only an item produced as bytes labelled JSON can be
-- one): an error inside a consumer's lease statement would roll the lease back
-- and make the item fail every consumer. Called beside the lease, it costs
-- nothing to queues that do not use it:
--   SELECT id, querator.payload_json(payload, encoding) AS body
--     FROM querator.queue_complete_and_lease('q', 'c', $1, 10, '5s');
CREATE FUNCTION querator.payload_json(payload bytea, encoding text) RETURNS json
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'querator_payload_json';
