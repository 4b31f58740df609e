-- Security: per-queue privileges (produce, consume, admin), who may create queues,
-- what a role without privileges sees, injection-style queue names, pinned search_path.
-- pg_regress runs as a superuser; the roles below are created here and dropped at the end.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_q_owner, regress_q_producer, regress_q_consumer, regress_q_outsider,
                    regress_q_member;
RESET client_min_messages;

CREATE ROLE regress_q_owner;     -- may create queues
CREATE ROLE regress_q_producer;  -- granted produce on one queue
CREATE ROLE regress_q_consumer;  -- granted consume on that queue
CREATE ROLE regress_q_outsider;  -- granted nothing
CREATE ROLE regress_q_member IN ROLE regress_q_producer;  -- inherits the producer's grants

-- What a deployment grants: use of the schema, and creating queues to chosen roles only.
GRANT USAGE ON SCHEMA querator TO regress_q_owner, regress_q_producer, regress_q_consumer,
                                  regress_q_outsider, regress_q_member;
-- (the stats view is not readable by PUBLIC after CREATE EXTENSION: granted here explicitly)
GRANT SELECT ON querator.stats TO regress_q_owner, regress_q_producer, regress_q_consumer,
                                  regress_q_outsider, regress_q_member;
GRANT EXECUTE ON FUNCTION querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval) TO regress_q_owner;

-- cell(role, sql): 'ok' or just the SQLSTATE, for the matrix below.
CREATE FUNCTION cell(r text, cmd text) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN res = 'ok' THEN 'ok' ELSE left(res, 5) END FROM try_as(r, cmd) AS res
$$;

---------------------------------------------------------------- who may create queues
-- EXECUTE on queues_create is not granted to PUBLIC
SELECT has_function_privilege('public', 'querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval)', 'EXECUTE') AS public_may_create;
SELECT try_as('regress_q_outsider', 'SELECT querator.queues_create(''sec_by_outsider'')');
SELECT try_as('regress_q_owner', 'SELECT querator.queues_create(''sec'', lease_timeout => ''1 hour'')');
-- the creator is recorded by role name
SELECT queue_name, owner FROM querator.queues_info('sec');

-- items in every state, produced by the owner without any grant
SET ROLE regress_q_owner;
SELECT cardinality(querator.queue_produce('sec', ARRAY(SELECT 'item' || g FROM generate_series(1, 40) g))) AS produced;
SELECT querator.queue_produce('sec', 'later'::text, enqueue_at => now() + interval '1 day') IS NOT NULL AS scheduled;
SELECT querator.queue_retry('sec', ARRAY(SELECT id FROM querator.queue_lease('sec', 'owner', 1)), dead => true);
SELECT querator.queue_grant('sec', 'regress_q_producer', 'produce');
SELECT querator.queue_grant('sec', 'regress_q_consumer', 'consume');
RESET ROLE;
SELECT role_name, privilege FROM querator.queue_grants WHERE queue_name = 'sec' ORDER BY 1, 2;

---------------------------------------------------------------- the grant matrix
-- Each call as each role: ok, or the SQLSTATE (42501 = insufficient privilege).
-- Calls that need a leased item lease it first, so the consume rows stand alone.
SELECT call,
       cell('regress_q_producer', cmd) AS producer,
       cell('regress_q_member', cmd) AS member,
       cell('regress_q_consumer', cmd) AS consumer,
       cell('regress_q_outsider', cmd) AS outsider,
       cell('regress_q_owner', cmd) AS owner
  FROM (VALUES
	(1, 'queues_info', 'SELECT * FROM querator.queues_info(''sec'')'),
	(2, 'queue_stats', 'SELECT * FROM querator.queue_stats(''sec'')'),
	(3, 'queue_produce', 'SELECT querator.queue_produce(''sec'', ''m''::text)'),
	(4, 'queue_produce batch', 'SELECT querator.queue_produce(''sec'', ARRAY[''m1'', ''m2'']::text[])'),
	(5, 'queue_lease', 'SELECT * FROM querator.queue_lease(''sec'', ''matrix'', 1)'),
	(6, 'queue_complete', 'SELECT querator.queue_complete(''sec'', ARRAY(SELECT id FROM querator.queue_lease(''sec'', ''matrix'', 1)))'),
	(7, 'queue_retry', 'SELECT querator.queue_retry(''sec'', ARRAY(SELECT id FROM querator.queue_lease(''sec'', ''matrix'', 1)))'),
	(8, 'queue_extend', 'SELECT querator.queue_extend(''sec'', ARRAY(SELECT id FROM querator.queue_lease(''sec'', ''matrix'', 1)))'),
	(9, 'storage_items_list', 'SELECT * FROM querator.storage_items_list(''sec'')'),
	(10, 'storage_scheduled_list', 'SELECT * FROM querator.storage_scheduled_list(''sec'')'),
	(11, 'storage_dead_list', 'SELECT * FROM querator.storage_dead_list(''sec'')'),
	(12, 'queues_update', 'SELECT querator.queues_update(''sec'', reference => ''updated'')'),
	(13, 'queue_pause', 'SELECT querator.queue_pause(''sec'')'),
	(14, 'queue_resume', 'SELECT querator.queue_resume(''sec'')'),
	(15, 'queue_clear', 'SELECT querator.queue_clear(''sec'', false, false, false)'),
	(16, 'queue_redrive', 'SELECT querator.queue_redrive(''sec'', ''{}''::bigint[])'),
	(17, 'queue_grant', 'SELECT querator.queue_grant(''sec'', ''regress_q_owner'', ''consume'')'),
	(18, 'queue_revoke', 'SELECT querator.queue_revoke(''sec'', ''regress_q_owner'', ''consume'')'),
	(19, 'queues_delete (not empty)', 'SELECT querator.queues_delete(''sec'')'),
	(20, 'queues_create', 'SELECT querator.queues_create(''sec_new'')')
  ) AS calls(n, call, cmd)
 ORDER BY n;

-- the messages
SELECT try_as('regress_q_consumer', 'SELECT querator.queue_produce(''sec'', ''m''::text)');
SELECT try_as('regress_q_producer', 'SELECT * FROM querator.queue_lease(''sec'', ''c'', 1)');
SELECT try_as('regress_q_producer', 'SELECT * FROM querator.storage_items_list(''sec'')');
SELECT try_as('regress_q_consumer', 'SELECT querator.queue_pause(''sec'')');
SELECT try_as('regress_q_outsider', 'SELECT * FROM querator.queues_info(''sec'')');
SELECT try_as('regress_q_outsider', 'SELECT * FROM querator.queue_stats(''sec'')');
SELECT try_as('regress_q_outsider', 'SELECT querator.queues_create(''sec_x'')');
-- and the hint says how to fix it
SET ROLE regress_q_consumer;
SELECT querator.queue_produce('sec', 'm'::text);
RESET ROLE;
-- what the matrix changed: the producers' items, the owner's update, the owner's new queue
SELECT reference, paused FROM querator.queues_info('sec');
SELECT queue_name, owner FROM querator.queues_list() WHERE queue_name LIKE 'sec%';
SELECT count(*) AS leased_by_matrix FROM querator.storage_items_list('sec', NULL, 10000) WHERE client_id = 'matrix';
SELECT count(*) FILTER (WHERE convert_from(payload, 'UTF8') LIKE 'm%') AS produced_by_matrix
  FROM querator.storage_items_list('sec', NULL, 10000);

---------------------------------------------------------------- what each role sees
-- queues_list and the stats view show only queues the role holds some privilege on
SELECT try_as('regress_q_owner', 'SELECT querator.queues_create(''sec_private'')');
CREATE FUNCTION visible_to(r text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	queues text;
	stats text;
BEGIN
	EXECUTE format('SET ROLE %I', r);
	SELECT string_agg(queue_name, ' ' ORDER BY queue_name) INTO queues
	  FROM querator.queues_list() WHERE queue_name LIKE 'sec%';
	SELECT string_agg(DISTINCT queue_name, ' ') INTO stats
	  FROM querator.stats WHERE queue_name LIKE 'sec%';
	RESET ROLE;
	RETURN 'list: ' || coalesce(queues, '-') || ' | stats: ' || coalesce(stats, '-');
END
$$;
SELECT r AS role, visible_to(r)
  FROM unnest(ARRAY['regress_q_owner', 'regress_q_producer', 'regress_q_member', 'regress_q_consumer',
                    'regress_q_outsider']) AS r;
-- a superuser sees every queue
SELECT string_agg(queue_name, ' ' ORDER BY queue_name) FROM querator.queues_list() WHERE queue_name LIKE 'sec%';
-- the tables themselves are out of reach: only the API reaches items
SELECT 'querator_data.q' || id || '_p0_items' AS items_table FROM querator.queues WHERE name = 'sec' \gset
SELECT try_as('regress_q_owner', 'SELECT count(*) FROM ' || :'items_table');
SELECT try_as('regress_q_producer', 'SELECT count(*) FROM querator.queues');
SELECT try_as('regress_q_producer', 'SELECT count(*) FROM querator.queue_grants');
SELECT try_as('regress_q_producer', 'INSERT INTO querator.queue_grants VALUES (''sec'', ''regress_q_outsider'', ''admin'')');
-- an unknown queue: 42704 for everyone
SELECT try_as('regress_q_outsider', 'SELECT querator.queue_produce(''sec_missing'', ''m''::text)');

---------------------------------------------------------------- admin: granting others, revoking
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', ''regress_q_outsider'', ''consume'')');
SELECT try_as('regress_q_owner', 'SELECT querator.queue_grant(''sec'', ''regress_q_producer'', ''admin'')');
-- now the producer administers the queue: it may grant others
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', ''regress_q_outsider'', ''consume'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', ''regress_q_outsider'', ''consume'')');  -- twice is fine
SELECT try_as('regress_q_outsider', 'SELECT * FROM querator.queue_lease(''sec'', ''o'', 1)');
SELECT try_as('regress_q_outsider', 'SELECT querator.queue_produce(''sec'', ''m''::text)');
SELECT visible_to('regress_q_outsider');
-- admin implies produce and consume
SELECT cell('regress_q_producer', 'SELECT * FROM querator.queue_lease(''sec'', ''p'', 1)') AS admin_leases;
-- grant errors
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', ''regress_q_outsider'', ''select'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', ''regress_q_nobody'', ''consume'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', '''', ''consume'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', NULL, ''consume'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec_missing'', ''regress_q_outsider'', ''consume'')');
-- revoke
SELECT try_as('regress_q_producer', 'SELECT querator.queue_revoke(''sec'', ''regress_q_outsider'', ''consume'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_revoke(''sec'', ''regress_q_outsider'', ''consume'')');  -- nothing to revoke: fine
SELECT try_as('regress_q_outsider', 'SELECT * FROM querator.queue_lease(''sec'', ''o'', 1)');
SELECT visible_to('regress_q_outsider');
SELECT try_as('regress_q_owner', 'SELECT querator.queue_revoke(''sec'', ''regress_q_producer'', ''admin'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_grant(''sec'', ''regress_q_outsider'', ''consume'')');
-- the owner cannot lose its rights: they come from creating the queue, not from a grant
SELECT try_as('regress_q_owner', 'SELECT querator.queue_revoke(''sec'', ''regress_q_owner'', ''admin'')');
SELECT cell('regress_q_owner', 'SELECT querator.queue_pause(''sec'')') AS owner_pauses,
       cell('regress_q_owner', 'SELECT querator.queue_resume(''sec'')') AS owner_resumes;
-- a deleted queue takes its grants with it; a new queue of the same name starts without them
SELECT try_as('regress_q_owner', 'SELECT querator.queues_delete(''sec'', force => true)');
SELECT count(*) AS grants_left FROM querator.queue_grants WHERE queue_name = 'sec';
SELECT try_as('regress_q_owner', 'SELECT querator.queues_create(''sec'')');
SELECT try_as('regress_q_producer', 'SELECT querator.queue_produce(''sec'', ''m''::text)');
SELECT try_as('regress_q_owner', 'SELECT querator.queues_delete(''sec'')');
SELECT try_as('regress_q_owner', 'SELECT querator.queues_delete(''sec_new'')');
SELECT try_as('regress_q_owner', 'SELECT querator.queues_delete(''sec_private'')');

---------------------------------------------------------------- injection-style queue names
-- Names are values: quotes, semicolons and comments in them never reach SQL text.
CREATE TABLE victim(x int);
INSERT INTO victim VALUES (1), (2), (3);
CREATE FUNCTION round_trip(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[];
	leased bigint[];
	done int;
	listed text;
	ready bigint;
	kinds boolean;
BEGIN
	PERFORM querator.queues_create(q, lease_timeout => '1 hour', partitions => 2);
	PERFORM querator.queue_grant(q, 'regress_q_producer', 'produce');
	ids := querator.queue_produce(q, ARRAY['x1', 'x2', 'x3']::text[], kinds => ARRAY[q, q, q]);
	SELECT bool_and(kind = q) INTO kinds FROM querator.storage_items_list(q);
	SELECT array_agg(id ORDER BY id) INTO leased FROM querator.queue_lease(q, q, 2);
	done := querator.queue_complete(q, leased);
	SELECT string_agg(queue_name, ',') INTO listed FROM querator.queues_list() WHERE queue_name = q;
	SELECT sum(total) INTO ready FROM querator.queue_stats(q);
	PERFORM querator.queue_pause(q);
	PERFORM querator.queue_resume(q);
	PERFORM querator.queue_clear(q);
	PERFORM querator.queue_revoke(q, 'regress_q_producer', 'produce');
	PERFORM querator.queues_delete(q);
	RETURN format('produced %s, completed %s, listed %s, ready %s, kind kept %s, gone %s',
	              cardinality(ids), done, listed = q, ready,
	              kinds, NOT EXISTS (SELECT 1 FROM querator.queues WHERE name = q));
END
$$;
SELECT name, round_trip(name)
  FROM unnest(ARRAY[
	'a";drop_table_x;--',
	'q'');select(1);--',
	'victim";DROP/**/TABLE/**/victim;--',
	''');DELETE/**/FROM/**/victim;--',
	'$$;DROP/**/TABLE/**/victim;$$',
	'%s%I%L\x',
	'querator_data.q1_p0_items',
	'"victim"',
	'é—名前'
  ]) AS name;
-- the kind (another text argument) and the client id stay values too
SELECT querator.queues_create('inj', lease_timeout => '1 hour');
SELECT querator.queue_produce('inj', 'x'::text, kind => '''); DROP TABLE victim; --',
                              reference => '"; DROP TABLE victim; --') IS NOT NULL AS produced;
SELECT kind, reference FROM querator.queue_lease('inj', '''); DROP TABLE victim; --', 1);
SELECT kind, reference, client_id FROM querator.storage_items_list('inj');
SELECT querator.queues_delete('inj', force => true);
-- nothing else changed
SELECT count(*) AS victim_rows FROM victim;
-- names that are invalid are refused before anything happens
SELECT try('SELECT querator.queues_create(''a b;drop table victim'')');
SELECT replace(try('SELECT querator.queues_create(E''a\nb'')'), E'\n', '\n') AS try;
SELECT try('SELECT querator.queues_create(repeat(''x'', 513))');
SELECT try('SELECT querator.queues_create(''a~b'')');
DROP TABLE victim;
DROP FUNCTION round_trip(text);

---------------------------------------------------------------- search_path is pinned
-- querator's C functions carry no SET search_path (since 0.3.0: it cost every call a
-- GUC nest level); the library pins the name resolution of its own statements to
-- pg_catalog alone while it runs them (spi.cpp, own_search_path).
SELECT count(*) AS c_functions_with_settings
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'querator'::regnamespace AND l.lanname = 'c' AND p.proconfig IS NOT NULL;
-- no function is SECURITY DEFINER: each checks its caller, then switches user internally
SELECT count(*) AS security_definer FROM pg_proc WHERE pronamespace = 'querator'::regnamespace AND prosecdef;
-- A caller's schema on search_path changes nothing, even placed before pg_catalog, and
-- neither does its temporary schema (searched first for tables and types unless the
-- path names it). Every stand-in below records that it ran; none of them may.
CREATE SCHEMA regress_shadow;
CREATE TABLE regress_shadow.captured (what text);
GRANT ALL ON SCHEMA regress_shadow TO PUBLIC;
GRANT ALL ON regress_shadow.captured TO PUBLIC;
CREATE FUNCTION regress_shadow.capture(what text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO regress_shadow.captured VALUES (what) RETURNING true $$;
CREATE TABLE regress_shadow.queues (name text);
CREATE FUNCTION regress_shadow.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT regress_shadow.capture('now()') AND false; SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION regress_shadow.clock_timestamp() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT regress_shadow.capture('clock_timestamp()'); SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION regress_shadow.nextval(regclass) RETURNS bigint LANGUAGE sql
    AS $$ SELECT regress_shadow.capture('nextval()'); SELECT 1::bigint $$;
CREATE FUNCTION regress_shadow.int8_eq(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_shadow.capture('bigint = bigint'); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR regress_shadow.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_shadow.int8_eq);
CREATE FUNCTION regress_shadow.int8_ge(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_shadow.capture('bigint >= bigint'); SELECT $1 OPERATOR(pg_catalog.>=) $2 $$;
CREATE OPERATOR regress_shadow.>= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_shadow.int8_ge);
CREATE DOMAIN pg_temp.bytea AS pg_catalog.bytea CHECK (regress_shadow.capture('temporary bytea'));
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (regress_shadow.capture('temporary text'));
CREATE DOMAIN pg_temp.json AS pg_catalog.json CHECK (regress_shadow.capture('temporary json'));
SET search_path = regress_shadow, pg_catalog, public;
SELECT querator.queues_create('shadowed', lease_timeout => '1 hour');
SELECT querator.queue_produce('shadowed', 'x'::pg_catalog.text) AS id \gset
SELECT querator.queue_produce('shadowed', ARRAY['y', 'z']::pg_catalog.text[]) AS ids;
-- the names for untyped drivers (issue 18): the single forms are SQL wrappers too
SELECT querator.queue_produce_text('shadowed', 'x'::pg_catalog.text) IS NOT NULL AS text_produced,
       querator.queue_produce_json('shadowed', '{}'::pg_catalog.json) IS NOT NULL AS json_produced,
       querator.queue_produce_bytes('shadowed', '\x00'::pg_catalog.bytea) IS NOT NULL AS bytes_produced;
SELECT count(*) AS leased FROM querator.queue_lease('shadowed', 'c', 1);
SELECT count(*) AS leased_next FROM querator.queue_complete_and_lease('shadowed', 'c', ARRAY[:id]::pg_catalog.int8[], 5);
SELECT created_at OPERATOR(pg_catalog.>) '2001-01-01' AS real_now FROM querator.storage_items_list('shadowed');
SELECT count(*) AS shadow_rows FROM regress_shadow.queues;
SELECT querator.queues_delete('shadowed', force => true);
RESET search_path;
SELECT count(*) AS captured FROM regress_shadow.captured;
DROP DOMAIN pg_temp.bytea;
DROP DOMAIN pg_temp.text;
DROP DOMAIN pg_temp.json;
SET client_min_messages = warning;
DROP SCHEMA regress_shadow CASCADE;
RESET client_min_messages;

---------------------------------------------------------------- clean up
DROP FUNCTION visible_to(text);
DROP FUNCTION cell(text, text);
DROP OWNED BY regress_q_owner, regress_q_producer, regress_q_consumer, regress_q_outsider, regress_q_member;
DROP ROLE regress_q_owner, regress_q_producer, regress_q_consumer, regress_q_outsider, regress_q_member;
