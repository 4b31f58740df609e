-- Webhook security (issue 11, section 3), the SQL side: who may set webhook_url and
-- webhook_headers (superusers and members of querator_webhook_admin), headers that
-- cannot be set, urls with userinfo or another scheme, and the destination setting's
-- check. Where a url may connect is checked at delivery: test/t/051, test/t/052.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_wh_owner, regress_wh_hooker, regress_wh_admin;
RESET client_min_messages;

-- the install script's role: cluster-wide, cannot log in
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'querator_webhook_admin';

CREATE ROLE regress_wh_owner;                              -- may create queues, no webhooks
CREATE ROLE regress_wh_hooker IN ROLE querator_webhook_admin; -- may create queues with webhooks
CREATE ROLE regress_wh_admin;                              -- granted admin on a webhook queue
GRANT USAGE ON SCHEMA querator TO regress_wh_owner, regress_wh_hooker, regress_wh_admin;
GRANT EXECUTE ON FUNCTION querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval) TO regress_wh_owner, regress_wh_hooker;

---------------------------------------------------------------- who may set a webhook url
-- a queue creator who is not a webhook admin: no url, no headers; a plain queue is fine
SET ROLE regress_wh_owner;
SELECT try($$SELECT querator.queues_create('wh_own', webhook_url => 'https://hooks.example.com/x')$$);
SELECT try($$SELECT querator.queues_create('wh_own', webhook_headers => '{"X-A": "b"}')$$);
SELECT try($$SELECT querator.queues_create('wh_own')$$);
SELECT try($$SELECT querator.queues_update('wh_own', webhook_url => 'https://hooks.example.com/x')$$);
-- removing a url (or leaving it empty) needs nothing more than admin on the queue
SELECT try($$SELECT querator.queues_update('wh_own', webhook_url => '', webhook_timeout => '5 s')$$);
RESET ROLE;
-- a member of querator_webhook_admin may
SET ROLE regress_wh_hooker;
SELECT try($$SELECT querator.queues_create('wh_hook', webhook_url => 'https://hooks.example.com/in',
    webhook_headers => '{"Authorization": "Bearer t0ken"}')$$);
SELECT try($$SELECT querator.queue_grant('wh_hook', 'regress_wh_admin', 'admin')$$);
RESET ROLE;
-- an admin of that queue who is not a webhook admin changes everything else, not where it goes
SET ROLE regress_wh_admin;
SELECT try($$SELECT querator.queues_update('wh_hook', webhook_timeout => '3 s', max_attempts => 5)$$);
SELECT try($$SELECT querator.queues_update('wh_hook', webhook_url => 'https://elsewhere.example.com/')$$);
SELECT try($$SELECT querator.queues_update('wh_hook', webhook_headers => '{"Authorization": "Bearer mine"}')$$);
-- re-stating the current url and headers changes nothing, so it is allowed
SELECT try($$SELECT querator.queues_update('wh_hook', webhook_url => 'https://hooks.example.com/in',
    webhook_headers => '{"Authorization": "Bearer t0ken"}')$$);
RESET ROLE;
SELECT queue_name, owner, webhook_url FROM querator.queues_info('wh_hook');
-- a superuser may
SELECT try($$SELECT querator.queues_update('wh_own', webhook_url => 'http://hooks.example.com:8080/own')$$);
-- and the queue keeps its url when its owner (no webhook admin) changes other options
SET ROLE regress_wh_owner;
SELECT try($$SELECT querator.queues_update('wh_own', lease_timeout => '2 min')$$);
RESET ROLE;
SELECT queue_name, webhook_url FROM querator.queues_info('wh_own');

---------------------------------------------------------------- headers
-- what frames or routes the request belongs to curl; names are HTTP tokens; no control characters;
-- no empty or blank value (curl would drop the header, so a Content-Type would not replace the encoding)
SELECT h, try(format($$SELECT querator.queues_update('wh_hook', webhook_headers => %L)$$, h)) AS result
  FROM (VALUES
	('{"Host": "169.254.169.254"}'),
	('{"host": "internal"}'),
	('{"Content-Length": "0"}'),
	('{"Transfer-Encoding": "chunked"}'),
	('{"CONNECTION": "close"}'),
	('{"Expect": "100-continue"}'),
	('{"Upgrade": "websocket"}'),
	('{"Proxy-Authorization": "Basic eA=="}'),
	('{"X-Ok": "a\r\nHost: evil"}'),
	('{"X-Ok": "a\nb"}'),
	('{"X-Ok": "tab\there"}'),
	('{"X-Ok": "nul\u0001"}'),
	('{"User-Agent": "", "Content-Type": ""}'),
	('{"Content-Type": "  "}'),
	('{"Bad Name": "v"}'),
	('{"X-A:b": "v"}'),
	('{"X-Evil\r\nHost": "v"}'),
	('{"": "v"}'),
	('{"X-Number": 1}'),
	('["X-A", "b"]'),
	('"text"'),
	('{"Authorization": "Bearer x", "X-Trace": "é ok"}')
  ) AS t(h);
SELECT try($$SELECT querator.queues_create('wh_bad', webhook_url => 'https://a.example.com/', webhook_headers => '{"Host": "b"}')$$);
SELECT count(*) AS wh_bad_created FROM querator.queues_list() WHERE queue_name = 'wh_bad';

---------------------------------------------------------------- urls
SELECT u, try(format($$SELECT querator.queues_update('wh_hook', webhook_url => %L)$$, u)) AS result
  FROM (VALUES
	('http://user:pw@localhost/'),
	('https://user@hooks.example.com/'),
	('https://:pw@hooks.example.com/'),
	('http://hooks.example.com@169.254.169.254/'),
	('ftp://hooks.example.com/'),
	('file:///etc/passwd'),
	('gopher://127.0.0.1:6379/_INFO'),
	('hooks.example.com/in'),
	('http://exa mple.com/'),
	('HTTPS://Hooks.Example.com/in'),
	('http://[::1]:8080/ok'),
	('http://169.254.169.254/latest/meta-data')
  ) AS t(u);
-- (the last three are well formed; where the last two lead is refused at delivery, after DNS resolution)
SELECT webhook_url FROM querator.queues_info('wh_hook');

---------------------------------------------------------------- the destination setting
-- set in postgresql.conf or by ALTER SYSTEM only, and checked when set
SHOW querator.webhook_allowed_cidrs;
SELECT try($$SET querator.webhook_allowed_cidrs = '127.0.0.1/32'$$);
ALTER SYSTEM SET querator.webhook_allowed_cidrs = '10.0.0.1/8';
ALTER SYSTEM SET querator.webhook_allowed_cidrs = 'localhost';
ALTER SYSTEM SET querator.webhook_allowed_cidrs = '127.0.0.0/8,,::1';
ALTER SYSTEM SET querator.webhook_allowed_cidrs = '::/129';

---------------------------------------------------------------- clean up
SELECT querator.queues_delete('wh_own');
SELECT querator.queues_delete('wh_hook');
DROP OWNED BY regress_wh_owner, regress_wh_hooker, regress_wh_admin;
DROP ROLE regress_wh_owner, regress_wh_hooker, regress_wh_admin;

