-- Dead queues across owners (issue 11, section 2): naming a queue as dead_queue takes the
-- produce privilege on it; a role that holds nothing on it learns nothing (the answer of a
-- missing queue); the dead queue's owner can always delete it with force, which detaches
-- the queues that name it; redrive returns items only to queues the caller may produce to;
-- no message names a queue the caller holds nothing on.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_dq_alice, regress_dq_mallory, regress_dq_prod;
RESET client_min_messages;
CREATE ROLE regress_dq_alice;    -- owns the queues someone wants to write into
CREATE ROLE regress_dq_mallory;  -- another queue owner
GRANT EXECUTE ON FUNCTION querator.queues_create(text, interval, interval, integer, text, text, integer,
    text, jsonb, interval, integer, interval, interval) TO regress_dq_alice, regress_dq_mallory;

SELECT try_as('regress_dq_alice', $$SELECT querator.queues_create('dq_theirs', lease_timeout => '1 hour')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_create('dq_mine', lease_timeout => '1 hour')$$);

---------------------------------------------------------------- naming a dead queue
-- holding nothing on it: the very answer of a queue that does not exist
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_create('dq_evil', dead_queue => 'dq_theirs')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_create('dq_evil', dead_queue => 'dq_theirs_nosuch')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', dead_queue => 'dq_theirs')$$);
-- some privilege, but not produce: 42501
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_theirs', 'regress_dq_mallory', 'consume')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_create('dq_evil', dead_queue => 'dq_theirs')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', dead_queue => 'dq_theirs')$$);
SELECT name, dead_queue FROM querator.queues WHERE name LIKE 'dq%' ORDER BY name;
-- with produce granted, dead letters of the caller's queue may go there
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_revoke('dq_theirs', 'regress_dq_mallory', 'consume')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_theirs', 'regress_dq_mallory', 'produce')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', dead_queue => 'dq_theirs')$$);
SET ROLE regress_dq_mallory;
SELECT querator.queue_produce('dq_mine', 'from mallory'::text) IS NOT NULL AS produced;
SELECT querator.queue_retry('dq_mine', ARRAY(SELECT id FROM querator.queue_lease('dq_mine', 'm', 1)), dead => true);
RESET ROLE;
SELECT payloads('dq_theirs') AS theirs_items;
-- the grant is checked when a call names the dead queue, not on every later update
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_revoke('dq_theirs', 'regress_dq_mallory', 'produce')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', reference => 'kept')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', dead_queue => 'dq_theirs')$$);

---------------------------------------------------------------- deleting a dead queue
-- a second queue, alice's own, also names dq_theirs
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_create('dq_alices', dead_queue => 'dq_theirs')$$);
-- without force: 2BP01, naming only a queue the caller may see
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_delete('dq_theirs')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_update('dq_alices', dead_queue => '')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_delete('dq_theirs')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_update('dq_alices', dead_queue => 'dq_theirs')$$);
-- with force: the owner deletes it; every queue that named it keeps its dead letters itself
-- (a NOTICE names those the caller may see and counts the others)
SET ROLE regress_dq_alice;
SELECT querator.queues_delete('dq_theirs', force => true);
RESET ROLE;
SELECT name, dead_queue FROM querator.queues WHERE name LIKE 'dq%' ORDER BY name;
SET ROLE regress_dq_mallory;
SELECT querator.queue_produce('dq_mine', 'dies at home'::text) IS NOT NULL AS produced;
SELECT querator.queue_retry('dq_mine', ARRAY(SELECT id FROM querator.queue_lease('dq_mine', 'm', 1)), dead => true);
SELECT convert_from(payload, 'UTF8') AS own_dead_letter, reason FROM querator.storage_dead_list('dq_mine');
RESET ROLE;

---------------------------------------------------------------- chains name no hidden queue
-- alice's dq_alices sends to dq_secret (mallory holds nothing there); mallory may produce to dq_alices
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_create('dq_secret')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_update('dq_alices', dead_queue => 'dq_secret')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_alices', 'regress_dq_mallory', 'produce')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', dead_queue => 'dq_alices')$$);
-- alice's queue names mallory's dq_mine as dead queue; mallory cannot give dq_mine one, and is not told by whom
SELECT try_as('regress_dq_mallory', $$SELECT querator.queue_grant('dq_mine', 'regress_dq_alice', 'produce')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_create('dq_feeder', dead_queue => 'dq_mine')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_create('dq_mallorys')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_update('dq_mine', dead_queue => 'dq_mallorys')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_delete('dq_mine')$$);

---------------------------------------------------------------- redrive
-- Items dead-lettered from alice's dq_feeder into mallory's dq_mine: mallory administers
-- dq_mine, but that grants nothing on dq_feeder, so a redrive leaves them where they are.
SET ROLE regress_dq_alice;
SELECT cardinality(querator.queue_produce('dq_feeder', ARRAY['f1', 'f2']::text[])) AS produced;
SELECT querator.queue_retry('dq_feeder', ARRAY(SELECT id FROM querator.queue_lease('dq_feeder', 'a', 2)), dead => true);
RESET ROLE;
SELECT payloads('dq_mine') AS dead_queue_items;
SET ROLE regress_dq_mallory;
SELECT querator.queue_redrive('dq_mine') AS redriven;
RESET ROLE;
SELECT payloads('dq_mine') AS dead_queue_items, payloads('dq_feeder') AS feeder_items;
-- with produce on dq_feeder, the same call returns them
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_feeder', 'regress_dq_mallory', 'produce')$$);
SET ROLE regress_dq_mallory;
SELECT querator.queue_redrive('dq_mine') AS redriven;
RESET ROLE;
SELECT payloads('dq_mine') AS dead_queue_items, payloads('dq_feeder') AS feeder_items;

---------------------------------------------------------------- lists show only dead queues the caller may see
-- regress_dq_prod holds only produce on alice's dq_shown1 and dq_shown2, whose dead queue is
-- mallory's dq_dead (alice may produce there, prod holds nothing on it): queues_list and
-- queues_info show prod NULL for it. dq_alices sends to dq_secret, where prod may consume: shown.
CREATE ROLE regress_dq_prod;
SELECT try_as('regress_dq_mallory', $$SELECT querator.queues_create('dq_dead')$$);
SELECT try_as('regress_dq_mallory', $$SELECT querator.queue_grant('dq_dead', 'regress_dq_alice', 'produce')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_create('dq_shown1', dead_queue => 'dq_dead')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queues_create('dq_shown2', dead_queue => 'dq_dead')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_shown1', 'regress_dq_prod', 'produce')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_shown2', 'regress_dq_prod', 'produce')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_alices', 'regress_dq_prod', 'produce')$$);
SELECT try_as('regress_dq_alice', $$SELECT querator.queue_grant('dq_secret', 'regress_dq_prod', 'consume')$$);
SET ROLE regress_dq_prod;
SELECT queue_name, dead_queue FROM querator.queues_list() ORDER BY queue_name;
SELECT queue_name, dead_queue FROM querator.queues_info('dq_shown1');
SELECT queue_name, dead_queue FROM querator.queues_info('dq_alices');
RESET ROLE;
-- alice may produce to dq_dead, and a superuser sees everything: the names show
SET ROLE regress_dq_alice;
SELECT queue_name, dead_queue FROM querator.queues_list() ORDER BY queue_name;
SELECT queue_name, dead_queue FROM querator.queues_info('dq_shown2');
RESET ROLE;
SELECT queue_name, dead_queue FROM querator.queues_list() WHERE queue_name LIKE 'dq%' ORDER BY queue_name;
SELECT querator.queues_delete('dq_shown1');
SELECT querator.queues_delete('dq_shown2');
SELECT querator.queues_delete('dq_dead');

---------------------------------------------------------------- clean up
SELECT querator.queues_delete('dq_feeder', force => true);
SELECT querator.queues_delete('dq_alices', force => true);
SELECT querator.queues_delete('dq_secret', force => true);
SELECT querator.queues_delete('dq_mine', force => true);
SELECT querator.queues_delete('dq_mallorys', force => true);
SELECT count(*) AS queues_left FROM querator.queues WHERE name LIKE 'dq%';
DROP OWNED BY regress_dq_alice, regress_dq_mallory, regress_dq_prod;
DROP ROLE regress_dq_alice, regress_dq_mallory, regress_dq_prod;
