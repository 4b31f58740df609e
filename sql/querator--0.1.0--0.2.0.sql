-- querator 0.1.0 -> 0.2.0: the security release (issue 11).
-- Released scripts are frozen: every schema change after 0.1.0 goes here, and
-- CREATE EXTENSION of 0.2.0 runs querator--0.1.0.sql followed by this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.2.0'" to load this file. \quit

---------------------------------------------------------------- install target (review of issue 11)
-- CREATE EXTENSION installs into a schema querator that already exists as it
-- finds it. Whoever owns that schema, or may create in it, or placed objects in
-- it beforehand, could add functions or operators there (an overload of
-- querator.queue_complete, say) that capture the calls of every role using
-- querator, superusers included. CREATE EXTENSION runs this script right after
-- the frozen 0.1.0 one, in the same transaction, and so does ALTER EXTENSION
-- UPDATE: refuse both unless the schema is the extension owner's alone. This
-- block runs before anything else of ours and names everything through
-- pg_catalog, since the schema it checks may be hostile. (The 0.1.0 script
-- before it only creates objects and calls querator's own C functions by their
-- qualified name; an error here rolls back all of it.)
DO $$
DECLARE
    ext record;
    found text;
BEGIN
    SELECT e.oid, e.extowner::pg_catalog.regrole::pg_catalog.text AS owner, n.oid AS nsp,
           n.nspowner::pg_catalog.regrole::pg_catalog.text AS nsp_owner, n.nspacl
      INTO ext
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'querator';
    IF ext.nsp_owner OPERATOR(pg_catalog.<>) ext.owner THEN
        RAISE EXCEPTION 'schema querator is owned by role %, not by the extension owner %', ext.nsp_owner, ext.owner
            USING ERRCODE = '55000',
                  DETAIL = 'Its owner could create functions in it that run with the privileges of any role calling querator, superusers included.',
                  HINT = pg_catalog.format('Make %s its owner (ALTER SCHEMA querator OWNER TO %s) or drop the schema, then run the command again.', ext.owner, ext.owner);
    END IF;
    SELECT pg_catalog.string_agg(CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                      ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END, ', ')
      INTO found
      FROM pg_catalog.aclexplode(ext.nspacl) a
     WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
       AND a.grantee::pg_catalog.regrole::pg_catalog.text OPERATOR(pg_catalog.<>) ext.owner;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'schema querator grants CREATE to %, not only to the extension owner %', found, ext.owner
            USING ERRCODE = '55000',
                  DETAIL = 'Those roles could create functions in it that run with the privileges of any role calling querator, superusers included.',
                  HINT = pg_catalog.format('REVOKE CREATE ON SCHEMA querator FROM %s, then run the command again.', found);
    END IF;
    -- Every object in the schema must be the extension's (a member); the rest
    -- was placed there by someone else (or by hand) and could shadow ours.
    SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), ', '
                                 ORDER BY pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid))
      INTO found
      FROM pg_catalog.pg_depend d
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND d.refobjid OPERATOR(pg_catalog.=) ext.nsp
       AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend m
                        WHERE m.classid OPERATOR(pg_catalog.=) d.classid AND m.objid OPERATOR(pg_catalog.=) d.objid
                          AND m.deptype OPERATOR(pg_catalog.=) 'e'
                          AND m.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                          AND m.refobjid OPERATOR(pg_catalog.=) ext.oid);
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'schema querator holds objects that are not part of the extension: %', found
            USING ERRCODE = '55000',
                  DETAIL = 'Objects placed in querator''s schema could shadow its functions and operators.',
                  HINT = 'Drop them or move them to another schema (ALTER ... SET SCHEMA), then run the command again.';
    END IF;
END
$$;

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

-- Durations are bounded from 0.2.0 on (README, "Fixed limits") and have no
-- negative part. A queue that 0.1.0 accepted with a longer one fails every lease
-- or produce with "timestamp out of range"; one with a negative part ('1 mon
-- -29 days') lasts longer than it says (up to 2 days for a lease). Justify
-- those (justify_interval: '1 day', the same length by interval comparison),
-- bring every duration down to its limit, and say so (a WARNING: extension
-- scripts run with client_min_messages at least warning). Valid values are
-- not touched.
DO $$
DECLARE
    d record;
    q record;
    names text[];
    changes text[];
    all_names text[] := '{}';
    all_changes text[] := '{}';
BEGIN
    FOR d IN SELECT * FROM (VALUES ('lease_timeout', interval '24 hours'), ('expire_timeout', interval '10 years'),
                                   ('webhook_timeout', interval '1 hour'), ('webhook_backoff', interval '24 hours'),
                                   ('webhook_backoff_max', interval '24 hours')) AS v(col, max)
    LOOP
        -- extract() keeps the sign of each field: a negative part shows as a negative field.
        EXECUTE pg_catalog.format(
            'WITH u AS (UPDATE querator.queues
                           SET %1$I = LEAST(pg_catalog.justify_interval(%1$I), $1)
                         WHERE %1$I OPERATOR(pg_catalog.>) $1
                            OR LEAST(extract(year FROM %1$I), extract(month FROM %1$I), extract(day FROM %1$I),
                                     extract(hour FROM %1$I), extract(minute FROM %1$I), extract(second FROM %1$I))
                               OPERATOR(pg_catalog.<) 0
                     RETURNING name, %1$I AS v)
             SELECT pg_catalog.array_agg(name), pg_catalog.array_agg(%1$L || '' '' || v) FROM u', d.col)
            INTO names, changes USING d.max;
        all_names := all_names || names;
        all_changes := all_changes || changes;
    END LOOP;
    FOR q IN SELECT c.name, pg_catalog.string_agg(c.change, ', ' ORDER BY c.change) AS changes
               FROM ROWS FROM (pg_catalog.unnest(all_names), pg_catalog.unnest(all_changes)) AS c(name, change) GROUP BY c.name ORDER BY c.name
    LOOP
        RAISE WARNING 'querator: durations of queue % changed to fit the limits of 0.2.0: %',
            pg_catalog.quote_literal(q.name), q.changes;
    END LOOP;
END
$$;

---------------------------------------------------------------- 0.1.0 definitions 0.2.0 refuses (review of issue 11)
-- (durations: the block above)

-- Naming a queue as dead_queue needs the produce privilege on it from 0.2.0 on
-- (README, "Dead queues"); 0.1.0 let any queue creator name any queue. Such a
-- feeder would keep writing its dead letters into a queue of another owner, who
-- could not delete it without force: detach it (as queues_delete(force) does),
-- so that it keeps its dead letters itself. "Holds produce" as the library
-- decides it (access.cpp): the feeder's owner is a superuser, or has the
-- privileges of the dead queue's owner or of a role granted produce or admin on
-- it. Roles are stored by name and may be gone: only existing ones count.
DO $$
DECLARE
    q record;
BEGIN
    FOR q IN
        WITH detached AS (
            UPDATE querator.queues f SET dead_queue = NULL
              FROM querator.queues d
             WHERE d.name OPERATOR(pg_catalog.=) f.dead_queue
               AND NOT EXISTS (
                   SELECT FROM pg_catalog.pg_roles o
                    WHERE o.rolname OPERATOR(pg_catalog.=) f.owner
                      AND (o.rolsuper OR EXISTS (
                           SELECT FROM pg_catalog.pg_roles r
                            WHERE (r.rolname OPERATOR(pg_catalog.=) d.owner
                                   OR r.rolname IN (SELECT g.role_name FROM querator.queue_grants g
                                                     WHERE g.queue_name OPERATOR(pg_catalog.=) d.name
                                                       AND g.privilege IN ('produce', 'admin')))
                              AND pg_catalog.pg_has_role(o.oid, r.oid, 'USAGE'))))
         RETURNING f.name, d.name AS dead_queue, f.owner)
        SELECT * FROM detached ORDER BY name
    LOOP
        RAISE WARNING 'querator: dead_queue of queue % removed: its owner % holds no produce privilege on %, which 0.2.0 requires; it keeps its dead letters in its own dead-letter table',
            pg_catalog.quote_literal(q.name), pg_catalog.quote_literal(q.owner), pg_catalog.quote_literal(q.dead_queue);
    END LOOP;
END
$$;

-- A webhook_url with a user name or password (http://user:pw@host/) is refused
-- from 0.2.0 on: credentials belong in webhook_headers, where only webhook admins
-- set them and no log or error shows them. Delivery refuses to send to such a url
-- (last_error says why, see webhook_status()); the url is not rewritten behind
-- the owner's back: warn, so that it is changed. The delivery check is curl's
-- own url parser (url_problem in webhook_http.cpp); this pattern only finds the
-- queues to name: an '@' in the authority part.
DO $$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT name FROM querator.queues
              WHERE webhook_url OPERATOR(pg_catalog.~) '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@'
              ORDER BY name
    LOOP
        RAISE WARNING 'querator: webhook_url of queue % has a user name or password, which 0.2.0 refuses: nothing is delivered to it until queues_update sets a url without them (credentials go in webhook_headers)',
            pg_catalog.quote_literal(q.name);
    END LOOP;
END
$$;

---------------------------------------------------------------- search_path (issue 11, section 1)

-- The single text and jsonb forms of queue_produce stay SQL functions, which
-- run under the caller's search_path, where a schema placed before pg_catalog
-- (for example by ALTER DATABASE ... SET search_path) could make "text" name a
-- domain of its own, whose CHECK would run inside our call. They now call the
-- text[] / jsonb[] forms (the C function) with their argument as is: no cast
-- or function name left to resolve, and encoding => NULL means the form's own
-- default (the C function knows the payload type; through bytea[] it did not).
CREATE OR REPLACE FUNCTION querator.queue_produce(
    queue_name text,
    payload    text,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'text/plain')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                     enqueue_at, encoding))[1] $$;

CREATE OR REPLACE FUNCTION querator.queue_produce(
    queue_name text,
    payload    jsonb,
    kind       text        DEFAULT '',
    reference  text        DEFAULT '',
    enqueue_at timestamptz DEFAULT NULL,
    encoding   text        DEFAULT 'application/json')
RETURNS bigint
LANGUAGE sql
AS $$ SELECT (querator.queue_produce(queue_name, ARRAY[payload], ARRAY[kind], ARRAY[reference],
                                     enqueue_at, encoding))[1] $$;

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

---------------------------------------------------------------- queue table templates (issue 12, section 2)
-- The tables of every queue are clones of these templates: the library runs
-- CREATE TABLE querator_data.qQ_pP_items (LIKE querator_data.items_template
-- INCLUDING ALL), and likewise for leases, scheduled (per partition) and dead
-- (per queue). Until 0.2.0 the same definitions were DDL strings in the
-- library, out of reach of an upgrade script. They are copied here unchanged
-- from the 0.1.0 library, so that the tables of queues created before and
-- after the upgrade are alike (test/t/084_queue_table_templates.pl compares a
-- clone with a table made by the 0.1.0 DDL).
--
-- A later version that changes a queue table alters its template here and,
-- in the same script, every existing queue's table of that kind (a loop over
-- querator.queues and its partitions; docs/design.md, "How a release is
-- made"). LIKE ... INCLUDING ALL copies columns, NOT NULL, defaults, CHECK
-- constraints, indexes (partial ones included), storage, compression,
-- statistics and column comments; it does not copy storage parameters (WITH
-- (fillfactor = ...)), ownership or privileges: templates have no storage
-- parameters (084 fails when a queue table's differ from its template's), and
-- queue tables get the owner and the (empty) privileges of querator_data's
-- tables by being created by its owner.
--
-- Templates hold no rows and are no queues (the catalog is querator.queues).
-- As members of the extension they are not dumped: CREATE EXTENSION creates
-- them again in the restored database.
CREATE TABLE querator_data.items_template (
    id bigint PRIMARY KEY, attempts integer NOT NULL, created_at timestamptz NOT NULL,
    expire_deadline timestamptz, source_id bigint, source_queue integer, last_error text, origin_id bigint,
    kind text NOT NULL, reference text NOT NULL, encoding text NOT NULL, payload bytea NOT NULL);
CREATE INDEX ON querator_data.items_template (expire_deadline) WHERE expire_deadline IS NOT NULL;

CREATE TABLE querator_data.leases_template (
    id bigint PRIMARY KEY, lease_deadline timestamptz NOT NULL, attempts integer NOT NULL,
    client_id text NOT NULL);
CREATE INDEX ON querator_data.leases_template (lease_deadline);

CREATE TABLE querator_data.scheduled_template (
    id bigint PRIMARY KEY, enqueue_at timestamptz NOT NULL, attempts integer NOT NULL,
    created_at timestamptz NOT NULL, expire_deadline timestamptz, source_id bigint, source_queue integer,
    last_error text, origin_id bigint, kind text NOT NULL, reference text NOT NULL, encoding text NOT NULL,
    payload bytea NOT NULL);
CREATE INDEX ON querator_data.scheduled_template (enqueue_at, id);
CREATE INDEX ON querator_data.scheduled_template (expire_deadline) WHERE expire_deadline IS NOT NULL;

CREATE TABLE querator_data.dead_template (
    id bigint PRIMARY KEY, partition integer NOT NULL, attempts integer NOT NULL,
    created_at timestamptz NOT NULL, expire_deadline timestamptz, source_id bigint, source_queue integer,
    last_error text, origin_id bigint, kind text NOT NULL, reference text NOT NULL, encoding text NOT NULL,
    payload bytea NOT NULL, dead_at timestamptz NOT NULL, reason text NOT NULL);

-- Owned like every queue table: by the owner of querator_data (the role that
-- created the extension), whoever runs this update. The library clones them
-- as that role, and LIKE needs SELECT on the template.
DO $$
DECLARE
    owner text := (SELECT nspowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_namespace
                    WHERE nspname OPERATOR(pg_catalog.=) 'querator_data');
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['items_template', 'leases_template', 'scheduled_template', 'dead_template'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE querator_data.%I OWNER TO %s', t, owner);
    END LOOP;
END
$$;
