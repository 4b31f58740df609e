-- querator regression: install the extension and the helpers every later file uses.
-- Each later file creates and deletes its own queues, so the files stay independent.
CREATE EXTENSION querator;
SELECT extname, extversion, extnamespace::regnamespace AS schema
  FROM pg_extension WHERE extname = 'querator';

-- try(sql): runs one statement; 'ok' when it succeeds, otherwise 'SQLSTATE: message'.
-- The statement's effects are rolled back when it fails (the handler's subtransaction).
CREATE FUNCTION try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE cmd;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- try_ids(sql): try() with the item ids quoted in the message masked as '<id>', for calls
-- whose ids come from the implementation (their values are not part of the contract).
CREATE FUNCTION try_ids(cmd text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(try(cmd), '''-?[0-9]+''', '''<id>''', 'g')
$$;

-- item_state(queue, id): where an id is now, from the three storage lists.
CREATE FUNCTION item_state(q text, item bigint) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(
		(SELECT CASE WHEN l.leased THEN 'leased' ELSE 'ready' END
		   FROM querator.storage_items_list(q, item, 1) l WHERE l.id = item),
		(SELECT 'scheduled' FROM querator.storage_scheduled_list(q, item, 1) s WHERE s.id = item),
		(SELECT 'dead' FROM querator.storage_dead_list(q, item, 1) d WHERE d.id = item),
		'absent')
$$;

-- payloads(queue): the queue's ready and leased items in list order, payloads as text.
CREATE FUNCTION payloads(q text) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(convert_from(l.payload, 'UTF8')
	                           || CASE WHEN l.leased THEN '*' ELSE '' END, ' ' ORDER BY l.id), '')
	  FROM querator.storage_items_list(q, NULL, 10000) l
$$;

-- try_as(role, sql): try() run as that role.
CREATE FUNCTION try_as(r text, cmd text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	result text;
BEGIN
	EXECUTE format('SET ROLE %I', r);
	result := try(cmd);
	RESET ROLE;
	RETURN result;
END
$$;

SELECT try('SELECT 1/0');
SELECT try('SELECT 1');
