-- What errors tell (issue 11, section 5): a role that holds nothing on a queue gets the
-- answer of a missing queue; errors of querator's internal SQL keep their SQLSTATE but
-- never show the statement, internal table names, detail or context to the client;
-- worker_status() is for monitoring roles only.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ee_outsider, regress_ee_producer, regress_ee_monitor;
RESET client_min_messages;
CREATE ROLE regress_ee_outsider;                    -- holds nothing on the queue
CREATE ROLE regress_ee_producer;                    -- holds produce only
CREATE ROLE regress_ee_monitor IN ROLE pg_monitor;  -- a monitoring role
GRANT EXECUTE ON FUNCTION querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval) TO regress_ee_outsider, regress_ee_producer;

---------------------------------------------------------------- no privilege = no such queue
SELECT querator.queues_create('ee_hidden', lease_timeout => '1 hour');
SELECT cardinality(querator.queue_produce('ee_hidden', ARRAY['a', 'b', 'c']::text[])) AS produced;
SELECT querator.queue_grant('ee_hidden', 'regress_ee_producer', 'produce');
-- Every call that names a queue, with ids that need no lease (privileges are checked first).
CREATE TEMP TABLE calls (n int, call text, cmd text);
INSERT INTO calls VALUES
	(1, 'queues_info', 'SELECT * FROM querator.queues_info(''ee_hidden'')'),
	(2, 'queue_stats', 'SELECT * FROM querator.queue_stats(''ee_hidden'')'),
	(3, 'queue_produce', 'SELECT querator.queue_produce(''ee_hidden'', ''m''::text)'),
	(4, 'queue_produce batch', 'SELECT querator.queue_produce(''ee_hidden'', ARRAY[''m'']::text[])'),
	(5, 'queue_lease', 'SELECT * FROM querator.queue_lease(''ee_hidden'', ''c'', 1)'),
	(6, 'queue_complete', 'SELECT querator.queue_complete(''ee_hidden'', ARRAY[1]::bigint[])'),
	(7, 'queue_retry', 'SELECT querator.queue_retry(''ee_hidden'', ARRAY[1]::bigint[])'),
	(8, 'queue_extend', 'SELECT querator.queue_extend(''ee_hidden'', ARRAY[1]::bigint[])'),
	(9, 'storage_items_list', 'SELECT * FROM querator.storage_items_list(''ee_hidden'')'),
	(10, 'storage_scheduled_list', 'SELECT * FROM querator.storage_scheduled_list(''ee_hidden'')'),
	(11, 'storage_dead_list', 'SELECT * FROM querator.storage_dead_list(''ee_hidden'')'),
	(12, 'queues_update', 'SELECT querator.queues_update(''ee_hidden'', reference => ''x'')'),
	(13, 'queues_delete', 'SELECT querator.queues_delete(''ee_hidden'', force => true)'),
	(14, 'queue_pause', 'SELECT querator.queue_pause(''ee_hidden'')'),
	(15, 'queue_resume', 'SELECT querator.queue_resume(''ee_hidden'')'),
	(16, 'queue_clear', 'SELECT querator.queue_clear(''ee_hidden'')'),
	(17, 'queue_redrive', 'SELECT querator.queue_redrive(''ee_hidden'')'),
	(18, 'queue_grant', 'SELECT querator.queue_grant(''ee_hidden'', ''regress_ee_outsider'', ''admin'')'),
	(19, 'queue_revoke', 'SELECT querator.queue_revoke(''ee_hidden'', ''regress_ee_producer'', ''produce'')'),
	(20, 'queues_create dead_queue', 'SELECT querator.queues_create(''ee_other_'' || current_user, dead_queue => ''ee_hidden'')'),
	(21, 'queues_list, stats', 'DO $$BEGIN IF EXISTS (SELECT 1 FROM querator.queues_list() WHERE queue_name = ''ee_hidden'')'
	                           ' OR EXISTS (SELECT 1 FROM querator.stats WHERE queue_name = ''ee_hidden'') THEN'
	                           ' RAISE ''listed''; END IF; END$$');
CREATE TEMP TABLE answers AS
	SELECT n, try_as('regress_ee_outsider', cmd) AS existing, try_as('regress_ee_producer', cmd) AS producer
	  FROM calls;
-- the queue and its items are untouched
SELECT payloads('ee_hidden') AS items, (SELECT string_agg(name, ' ') FROM querator.queues WHERE name LIKE 'ee_other%') AS created;
SELECT querator.queues_delete('ee_hidden', force => true);
-- The same calls once the queue is gone: an outsider cannot tell the difference. A role
-- with some privilege (produce) gets 42501 for what it may not do.
SELECT c.n, c.call, a.existing = try_as('regress_ee_outsider', c.cmd) AS same_as_missing,
       left(a.existing, 5) AS outsider, left(a.producer, 5) AS producer
  FROM calls c JOIN answers a USING (n) ORDER BY n;
SELECT DISTINCT existing AS outsider_answer FROM answers WHERE existing <> 'ok' ORDER BY 1;
SELECT producer AS producer_answer FROM answers WHERE n = 5;
SELECT querator.queues_delete('ee_other_regress_ee_producer');

---------------------------------------------------------------- internal errors
-- error_parts(sql): 'ok', or every field of the error the client receives.
CREATE FUNCTION error_parts(cmd text, OUT code text, OUT message text, OUT detail text, OUT hint text,
                            OUT context text, OUT fields text) LANGUAGE plpgsql AS $$
DECLARE
	schema_name text;
	table_name text;
	constraint_name text;
BEGIN
	EXECUTE cmd;
	code := 'ok';
EXCEPTION WHEN OTHERS OR query_canceled THEN
	GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
	                        hint = PG_EXCEPTION_HINT, context = PG_EXCEPTION_CONTEXT,
	                        schema_name = SCHEMA_NAME, table_name = TABLE_NAME, constraint_name = CONSTRAINT_NAME;
	fields := concat_ws(' ', schema_name, table_name, constraint_name);
END
$$;
-- leaks(sql): what the client sees, and whether any of it shows querator's internals: its
-- schemas and tables (so its statements), or the objects this file adds to an internal table.
CREATE FUNCTION leaks(cmd text) RETURNS TABLE (code text, message text, hint text, internals_shown boolean)
LANGUAGE sql AS $$
	SELECT e.code, e.message, e.hint,
	       concat_ws(' ', e.message, e.detail, e.hint, e.context, e.fields)
	         ~ '(querator_data|\mq[0-9]+_p[0-9]+_|querator\.(queues|queue_grants)\M|regress_(never|renamed|raise|slow))'
	  FROM error_parts(cmd) e
$$;
SELECT querator.queues_create('ee', lease_timeout => '1 hour');
SELECT querator.queue_produce('ee', 'x'::text) IS NOT NULL AS produced;
-- segment 0 of partition 0: where a new queue's items go (docs/design.md, "Segments")
SELECT 'querator_data.q' || id || '_p0_items_s0' AS items_table FROM querator.queues WHERE name = 'ee' \gset

-- a read-only transaction (what a standby says too): 25006 stays 25006
BEGIN;
SET TRANSACTION READ ONLY;
SELECT * FROM leaks($$SELECT querator.queue_produce('ee', 'y'::text)$$);
SELECT * FROM leaks($$SELECT * FROM querator.queue_lease('ee', 'c', 1)$$);
SELECT * FROM leaks($$SELECT querator.queues_create('ee_new')$$);
-- what only reads still works
SELECT queue_name, total FROM querator.queue_stats('ee');
ROLLBACK;
-- the context the client sees is its own (here: error_parts and its EXECUTE), never querator's statement
BEGIN;
SET TRANSACTION READ ONLY;
SELECT context FROM error_parts($$SELECT querator.queue_produce('ee', 'y'::text)$$);
ROLLBACK;
-- the full error goes to the server log only, never to the client, whatever client_min_messages says
BEGIN;
SET TRANSACTION READ ONLY;
SET LOCAL client_min_messages = log;
SELECT querator.queue_produce('ee', 'y'::text);
ROLLBACK;

-- The cases below need a statement of querator's that writes an internal table a trigger
-- or a constraint can be put on: retry's (produce, lease and complete write over the
-- access methods since 0.4.0, without statements). 'x' is leased for it; each failed
-- retry rolls back, so it stays leased.
SELECT set_config('regress.leased', id::text, false) IS NOT NULL AS leased FROM querator.queue_lease('ee', 'c', 1);
-- a constraint violation in an internal table: its message, detail and fields name the table
BEGIN;
ALTER TABLE :items_table ADD CONSTRAINT regress_never CHECK (false) NOT VALID;
SELECT * FROM leaks($$SELECT querator.queue_retry('ee', current_setting('regress.leased')::bigint)$$);
ROLLBACK;
-- an internal table that is gone: PostgreSQL's message itself names it
BEGIN;
ALTER TABLE :items_table RENAME TO regress_renamed;
SELECT * FROM leaks($$SELECT querator.queue_produce('ee', 'y'::text)$$);
ROLLBACK;

-- statement_timeout inside querator's statement: 57014 and PostgreSQL's message pass unchanged
CREATE FUNCTION regress_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.pg_sleep(30);
	RETURN NEW;
END
$$;
BEGIN;
CREATE TRIGGER regress_slow BEFORE INSERT ON :items_table FOR EACH ROW EXECUTE FUNCTION regress_slow();
SET LOCAL statement_timeout = '200ms';
SELECT * FROM leaks($$SELECT querator.queue_retry('ee', current_setting('regress.leased')::bigint)$$);
ROLLBACK;

-- Each SQLSTATE raised inside an internal statement (by a trigger on the items table):
-- the SQLSTATE always reaches the client; PostgreSQL's own message for the ones that name
-- no object (cancel, serialization, deadlock, lock timeout, shutdown, data exceptions),
-- querator's message for the rest; detail, hint and context never.
CREATE FUNCTION regress_raise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = pg_catalog.current_setting('regress.code'), MESSAGE = 'raised by a trigger',
		DETAIL = 'on ' || TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, HINT = 'look at ' || TG_TABLE_NAME,
		TABLE = TG_TABLE_NAME, SCHEMA = TG_TABLE_SCHEMA;
END
$$;
CREATE FUNCTION raised(sqlstate text) RETURNS TABLE (code text, message text, hint text, internals_shown boolean)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('regress.code', sqlstate, true);
	RETURN QUERY SELECT * FROM leaks($q$SELECT querator.queue_retry('ee', current_setting('regress.leased')::bigint)$q$);
END
$$;
BEGIN;
CREATE TRIGGER regress_raise BEFORE INSERT ON :items_table FOR EACH ROW EXECUTE FUNCTION regress_raise();
SELECT r.* FROM unnest(ARRAY['57014', '40001', '40P01', '55P03', '57P01', '22008', '25006', '53100', '23505',
                             '42P01', 'XX000', 'P0001']) AS c, raised(c) AS r;
ROLLBACK;

-- querator's own errors are unchanged (message, hint)
SELECT * FROM leaks($$SELECT * FROM querator.queue_lease('ee', 'c', 0)$$);
SELECT * FROM leaks($$SELECT querator.queue_complete('ee', 999::bigint)$$);
-- and nothing above changed the queue
SELECT payloads('ee') AS items;
SELECT querator.queues_delete('ee', force => true);
DROP FUNCTION raised(text);
DROP FUNCTION regress_raise();
DROP FUNCTION regress_slow();
DROP FUNCTION leaks(text);
DROP FUNCTION error_parts(text);

---------------------------------------------------------------- worker_status()
-- database names and counters: for pg_monitor members, superusers and the extension owner
SELECT has_function_privilege('public', 'querator.worker_status()', 'EXECUTE') AS public_may_call;
SELECT try_as('regress_ee_outsider', 'SELECT count(*) FROM querator.worker_status()');
SELECT try_as('regress_ee_monitor', 'SELECT count(*) FROM querator.worker_status()');
SELECT count(*) >= 0 AS superuser_may_call FROM querator.worker_status();

---------------------------------------------------------------- clean up
DROP OWNED BY regress_ee_outsider, regress_ee_producer, regress_ee_monitor;
DROP ROLE regress_ee_outsider, regress_ee_producer, regress_ee_monitor;
