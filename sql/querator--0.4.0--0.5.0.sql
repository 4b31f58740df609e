-- querator 0.4.0 -> 0.5.0.
-- 0.4.0 is released: its scripts are frozen. Every schema change after it goes
-- here, under a header naming its area; CREATE EXTENSION of 0.5.0 runs
-- querator--0.1.0.sql, the upgrade scripts up to 0.4.0 and then this file.
\echo Use "ALTER EXTENSION querator UPDATE TO '0.5.0'" to load this file. \quit

---------------------------------------------------------------- HTTP API keys (issue 15)
-- An API key acts as a PostgreSQL role: the HTTP API runs each request as
-- that role (SET LOCAL ROLE), so the queue grants decide exactly as for SQL
-- callers. Only a SHA-256 of the key is stored; the key itself is shown once,
-- by api_key_create. Roles are kept by name, as in queue_grants, so the keys
-- survive pg_dump and restore; a key whose role was dropped authenticates
-- nobody. Superusers only: a key is a login.
CREATE TABLE querator.api_keys (
    tag         text PRIMARY KEY,            -- the key's public part: qtr-<tag>-<secret>
    key_hash    bytea NOT NULL UNIQUE,       -- sha256 of the whole key
    role_name   text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revoked_at  timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('querator.api_keys', '');
REVOKE ALL ON querator.api_keys FROM PUBLIC;

CREATE FUNCTION querator.api_key_create(role_name text, description text DEFAULT '')
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_tag text;
    new_key text;
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = api_key_create.role_name) THEN
        RAISE EXCEPTION 'role is invalid; no role named ''%''', role_name USING ERRCODE = '42704';
    END IF;
    -- gen_random_uuid() draws from pg_strong_random: 122 random bits per uuid.
    new_tag := substr(replace(gen_random_uuid()::text, '-', ''), 1, 8);
    new_key := 'qtr-' || new_tag || '-' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    INSERT INTO querator.api_keys (tag, key_hash, role_name, description)
    VALUES (new_tag, sha256(convert_to(new_key, 'UTF8')), api_key_create.role_name, coalesce(description, ''));
    RETURN new_key;
END
$$;
REVOKE ALL ON FUNCTION querator.api_key_create(text, text) FROM PUBLIC;

CREATE FUNCTION querator.api_keys_list()
RETURNS TABLE(tag text, role_name text, description text, created_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.tag, k.role_name, k.description, k.created_at, k.revoked_at
      FROM querator.api_keys k ORDER BY k.created_at, k.tag
$$;
REVOKE ALL ON FUNCTION querator.api_keys_list() FROM PUBLIC;

-- Revoking is immediate: every request looks its key up.
CREATE FUNCTION querator.api_key_revoke(tag text)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE querator.api_keys k SET revoked_at = now()
     WHERE k.tag = api_key_revoke.tag AND k.revoked_at IS NULL
    RETURNING true
$$;
REVOKE ALL ON FUNCTION querator.api_key_revoke(text) FROM PUBLIC;

-- The first statement of every HTTP request, on the API's superuser
-- connection: the rest of the request's transaction acts as the key's role
-- (or the configured anonymous role when api_key is NULL), with no more
-- privilege, and with the request's statement timeout (0: none). Not
-- SECURITY DEFINER and without a SET clause, because both would undo the
-- SET LOCAL of role at its return; every name is schema-qualified instead.
CREATE FUNCTION querator.http_begin(api_key text, anonymous_role text, statement_timeout_ms integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    acting text;
BEGIN
    IF api_key IS NOT NULL THEN
        SELECT k.role_name INTO acting FROM querator.api_keys k
         WHERE k.key_hash OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(api_key, 'UTF8'))
           AND k.revoked_at IS NULL;
    ELSIF anonymous_role OPERATOR(pg_catalog.<>) '' THEN
        acting := anonymous_role;
    END IF;
    -- A syscache lookup, not a query: this runs before every request.
    IF acting IS NULL OR pg_catalog.to_regrole(pg_catalog.quote_ident(acting)) IS NULL THEN
        RAISE EXCEPTION 'unauthenticated; %', CASE WHEN api_key IS NULL THEN 'no api key (Authorization: Bearer <key>)'
                                                 ELSE 'invalid or revoked api key' END
              USING ERRCODE = '28000';
    END IF;
    PERFORM pg_catalog.set_config('role', acting, true);
    IF statement_timeout_ms OPERATOR(pg_catalog.>) 0 THEN
        PERFORM pg_catalog.set_config('statement_timeout', statement_timeout_ms::text, true);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION querator.http_begin(text, text, integer) FROM PUBLIC;

---------------------------------------------------------------- storage_items_delete (issue 15)
-- Deletes given items of a queue, ready, leased or scheduled (Querator's
-- storage/items.delete, served over HTTP too). All or none: an id the queue
-- does not hold fails the call (42704). Takes the admin privilege, as
-- queue_clear. Dead letters are not items: queue_redrive or queues_delete.
CREATE FUNCTION querator.storage_items_delete(queue_name text, ids bigint[])
RETURNS bigint
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_storage_items_delete';

---------------------------------------------------------------- catalog changes by any means (issue 17)
-- Every statement that changes querator.queues moves the catalog version at
-- commit, through the API or not (a restore's COPY, a superuser's UPDATE), so
-- backends' cached definitions follow it and the worker re-reads the catalog
-- only when it changed (before 0.5.0 it re-read it once a minute for these).
CREATE FUNCTION querator.queues_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'querator_queues_changed';
REVOKE ALL ON FUNCTION querator.queues_changed() FROM PUBLIC;
CREATE TRIGGER queues_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON querator.queues
    FOR EACH STATEMENT EXECUTE FUNCTION querator.queues_changed();
