-- Every bad input of spec section 5: an ERROR with its SQLSTATE, and nothing changes.
-- try() shows 'SQLSTATE: message'.

SELECT querator.queues_create('err', lease_timeout => '1 hour', expire_timeout => '1 day');
SELECT querator.queues_create('errdlq');
SELECT querator.queues_create('errchain', dead_queue => 'errdlq');
CREATE TEMP TABLE snap AS SELECT * FROM querator.queues_list();

---------------------------------------------------------------- queue names (22023)
SELECT try($$SELECT querator.queues_create('')$$);
SELECT try($$SELECT querator.queues_create('   ')$$);
SELECT try($$SELECT querator.queues_create(E'\t')$$);
SELECT try($$SELECT querator.queues_create('a~b')$$);
SELECT try($$SELECT querator.queues_create('~')$$);
SELECT try_ids(format('SELECT querator.queues_create(%L)', repeat('n', 513)));
SELECT try($$SELECT querator.queues_create(NULL)$$);
-- the other functions check the name the same way
SELECT try($$SELECT querator.queue_produce('', 'x'::text)$$);
SELECT try($$SELECT * FROM querator.queue_lease('a~b', 'c')$$);
SELECT try($$SELECT querator.queues_info('')$$);
-- a name that looks like SQL is only a name: refused (whitespace) or stored as it is; never run
CREATE TABLE victim (x int);
SELECT try($$SELECT querator.queues_create('a"; DROP TABLE victim; --')$$);
SELECT try($$SELECT querator.queues_create('x''); DROP TABLE victim; --')$$);
SELECT try($$SELECT querator.queue_produce('a"; DROP TABLE victim; --', 'x'::text)$$);
SELECT try($$SELECT querator.queues_delete('a"; DROP TABLE victim; --', true)$$);
-- without whitespace the name is valid, and every call quotes it
SELECT querator.queues_create('a";DROP/**/TABLE/**/victim;--', partitions => 2);
SELECT querator.queues_create($$x');DROP/**/TABLE/**/victim;--$$, dead_queue => 'a";DROP/**/TABLE/**/victim;--');
SELECT querator.queue_produce($$x');DROP/**/TABLE/**/victim;--$$, 'x'::text) IS NOT NULL AS produced;
SELECT convert_from(payload, 'UTF8') AS payload, attempts
  FROM querator.queue_lease($$x');DROP/**/TABLE/**/victim;--$$, 'c"--');
SELECT querator.queue_retry($$x');DROP/**/TABLE/**/victim;--$$,
                            ARRAY(SELECT id FROM querator.storage_items_list($$x');DROP/**/TABLE/**/victim;--$$)),
                            dead => true);
SELECT convert_from(payload, 'UTF8') AS payload, attempts
  FROM querator.storage_items_list('a";DROP/**/TABLE/**/victim;--');
SELECT queue_name, dead_queue FROM querator.queues_list() ORDER BY queue_name;
SELECT querator.queues_delete($$x');DROP/**/TABLE/**/victim;--$$, true);
SELECT querator.queues_delete('a";DROP/**/TABLE/**/victim;--', true);
SELECT count(*) AS victim_exists FROM pg_class WHERE relname = 'victim';
DROP TABLE victim;

---------------------------------------------------------------- unknown queue (42704)
SELECT try($$SELECT querator.queues_info('nosuch')$$);
SELECT try($$SELECT querator.queues_update('nosuch', reference => 'x')$$);
SELECT try($$SELECT querator.queues_delete('nosuch')$$);
SELECT try($$SELECT querator.queue_produce('nosuch', 'x'::text)$$);
SELECT try($$SELECT querator.queue_produce('nosuch', ARRAY['x', 'y']::text[])$$);
SELECT try($$SELECT * FROM querator.queue_lease('nosuch', 'c')$$);
SELECT try($$SELECT querator.queue_complete('nosuch', ARRAY[1::bigint])$$);
SELECT try($$SELECT querator.queue_retry('nosuch', ARRAY[1::bigint])$$);
SELECT try($$SELECT querator.queue_extend('nosuch', ARRAY[1::bigint])$$);
SELECT try($$SELECT * FROM querator.storage_items_list('nosuch')$$);
SELECT try($$SELECT * FROM querator.storage_scheduled_list('nosuch')$$);
SELECT try($$SELECT * FROM querator.storage_dead_list('nosuch')$$);
-- names are case sensitive
SELECT try($$SELECT querator.queues_info('ERR')$$);

---------------------------------------------------------------- duplicate queue (42710)
SELECT try($$SELECT querator.queues_create('err')$$);
SELECT try($$SELECT querator.queues_create('err', lease_timeout => '5 minutes')$$);

---------------------------------------------------------------- durations (22023)
SELECT try($$SELECT querator.queues_create('bad', lease_timeout => '1 hour', expire_timeout => '30 minutes')$$);
SELECT try($$SELECT querator.queues_create('bad', lease_timeout => '0')$$);
SELECT try($$SELECT querator.queues_create('bad', lease_timeout => '-1 minute')$$);
SELECT try($$SELECT querator.queues_create('bad', expire_timeout => '-1 day')$$);
-- the default lease_timeout (1 minute) above a shorter expire_timeout
SELECT try($$SELECT querator.queues_create('bad', expire_timeout => '30 seconds')$$);
SELECT try($$SELECT querator.queues_update('err', lease_timeout => '2 days')$$);
SELECT try($$SELECT querator.queues_update('err', expire_timeout => '30 minutes')$$);
SELECT try($$SELECT querator.queues_update('err', lease_timeout => '0')$$);
SELECT try($$SELECT querator.queues_update('err', lease_timeout => '-5 seconds')$$);
SELECT try($$SELECT querator.queues_update('err', expire_timeout => '-1 hour')$$);

---------------------------------------------------------------- max_attempts, partitions (22023)
SELECT try($$SELECT querator.queues_create('bad', max_attempts => -1)$$);
SELECT try($$SELECT querator.queues_create('bad', max_attempts => 65537)$$);
SELECT try($$SELECT querator.queues_create('bad', partitions => 0)$$);
SELECT try($$SELECT querator.queues_create('bad', partitions => -3)$$);
SELECT try($$SELECT querator.queues_create('bad', partitions => 100000)$$);
SELECT try($$SELECT querator.queues_update('err', max_attempts => -1)$$);
SELECT try($$SELECT querator.queues_update('err', max_attempts => 65537)$$);
SELECT try($$SELECT querator.queues_update('err', partitions => 0)$$);
SELECT try($$SELECT querator.queues_update('err', partitions => 100000)$$);

---------------------------------------------------------------- dead_queue (42704 / 22023)
SELECT try($$SELECT querator.queues_create('bad', dead_queue => 'nosuch')$$);
SELECT try($$SELECT querator.queues_create('bad', dead_queue => 'bad')$$);
SELECT try($$SELECT querator.queues_create('bad', dead_queue => 'errchain')$$);
SELECT try($$SELECT querator.queues_update('err', dead_queue => 'nosuch')$$);
SELECT try($$SELECT querator.queues_update('err', dead_queue => 'err')$$);
SELECT try($$SELECT querator.queues_update('err', dead_queue => 'errchain')$$);
-- the other way round: a queue that is some queue's dead_queue cannot get one itself
SELECT try($$SELECT querator.queues_update('errdlq', dead_queue => 'err')$$);

-- none of the above created or changed a queue
SELECT count(*) AS queues_named_bad FROM querator.queues_list() WHERE queue_name = 'bad';
SELECT count(*) AS queues_changed
  FROM ((TABLE snap EXCEPT SELECT * FROM querator.queues_list())
        UNION ALL
        (SELECT * FROM querator.queues_list() EXCEPT TABLE snap)) d;
SELECT queue_name, lease_timeout, expire_timeout, max_attempts, dead_queue, reference, partitions
  FROM querator.queues_list() ORDER BY queue_name;
-- an update with one bad option among good ones changes nothing
SELECT try($$SELECT querator.queues_update('err', reference => 'changed', max_attempts => -1)$$);
SELECT try($$SELECT querator.queues_update('err', reference => 'changed', partitions => 2, dead_queue => 'err')$$);
SELECT reference, max_attempts, partitions, dead_queue FROM querator.queues_info('err');

---------------------------------------------------------------- produce batches (22023 / 54000)
SHOW querator.max_batch_size;
SHOW querator.max_payload_size;
SELECT try($$SELECT querator.queue_produce('err', ARRAY[]::text[])$$);
SELECT try($$SELECT querator.queue_produce('err', ARRAY[]::bytea[])$$);
SELECT try($$SELECT querator.queue_produce('err', NULL::text[])$$);
SELECT try($$SELECT querator.queue_produce('err', ARRAY(SELECT 'x' || g FROM generate_series(1, 1001) g))$$);
-- kinds / item_references that do not match the payloads
SELECT try($$SELECT querator.queue_produce('err', ARRAY['a', 'b']::text[], kinds => ARRAY['k'])$$);
SELECT try($$SELECT querator.queue_produce('err', ARRAY['a', 'b']::text[], item_references => ARRAY['r1', 'r2', 'r3'])$$);
-- NULL payload
SELECT try($$SELECT querator.queue_produce('err', NULL::bytea)$$);
SELECT try($$SELECT querator.queue_produce('err', ARRAY['a', NULL]::text[])$$);
-- payload over max_payload_size (54000); exactly the limit is fine
SELECT try($$SELECT querator.queue_produce('err', decode(repeat('ab', 1048577), 'hex'))$$);
SELECT try($$SELECT querator.queue_produce('err', ARRAY['small'::bytea, decode(repeat('ab', 1048577), 'hex')])$$);
SELECT try($$SELECT querator.queue_produce('err', repeat('x', 1048577))$$);
SELECT count(*) AS items_after_bad_produces FROM querator.storage_items_list('err');
SELECT querator.queue_produce('err', decode(repeat('ab', 1048576), 'hex')) IS NOT NULL AS exactly_1mb;
SELECT length(payload) FROM querator.storage_items_list('err');
-- a lower limit set for the session applies
SET querator.max_batch_size = 2;
SELECT try($$SELECT querator.queue_produce('err', ARRAY['a', 'b', 'c']::text[])$$);
RESET querator.max_batch_size;

---------------------------------------------------------------- lease arguments
SELECT try($$SELECT * FROM querator.queue_lease('err', '')$$);
SELECT try($$SELECT * FROM querator.queue_lease('err', NULL)$$);
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', 0)$$);
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', -1)$$);
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', 1001)$$);
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', 1, '-1 second')$$);
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', 1, '16 minutes')$$);
-- wait under REPEATABLE READ / SERIALIZABLE (25000)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', 1, '1 second')$$);
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT try($$SELECT * FROM querator.queue_lease('err', 'c', 1, '1 second')$$);
ROLLBACK;
-- none of these leased anything
SELECT count(*) FILTER (WHERE leased) AS leased, count(*) AS items, max(attempts) AS attempts
  FROM querator.storage_items_list('err');

---------------------------------------------------------------- complete / retry / extend ids
SELECT querator.queue_produce('err', 'ready'::text) AS ready_id \gset
SELECT id AS leased_id FROM querator.queue_lease('err', 'c') \gset
SELECT item_state('err', :leased_id) AS leased_item, item_state('err', :ready_id) AS ready_item;
-- unknown id (42704)
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s])', 'err', :ready_id + 1000));
SELECT try_ids(format('SELECT querator.queue_retry(%L, ARRAY[%s])', 'err', :ready_id + 1000));
SELECT try_ids(format('SELECT querator.queue_extend(%L, ARRAY[%s])', 'err', :ready_id + 1000));
-- ids that cannot exist: zero, negative, the largest bigint
SELECT try($$SELECT querator.queue_complete('err', ARRAY[0::bigint])$$);
SELECT try($$SELECT querator.queue_complete('err', ARRAY[-1::bigint])$$);
SELECT try($$SELECT querator.queue_retry('err', ARRAY[9223372036854775807])$$);
SELECT try($$SELECT querator.queue_extend('err', ARRAY['-9223372036854775808'::bigint])$$);
-- not leased (55000)
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s])', 'err', :ready_id));
SELECT try_ids(format('SELECT querator.queue_retry(%L, ARRAY[%s])', 'err', :ready_id));
SELECT try_ids(format('SELECT querator.queue_retry(%L, ARRAY[%s], dead => true)', 'err', :ready_id));
SELECT try_ids(format('SELECT querator.queue_extend(%L, ARRAY[%s])', 'err', :ready_id));
-- one bad id among good ones fails the whole call
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s, %s])', 'err', :leased_id, :ready_id));
SELECT try_ids(format('SELECT querator.queue_retry(%L, ARRAY[%s, %s])', 'err', :leased_id, :ready_id + 1000));
SELECT try_ids(format('SELECT querator.queue_extend(%L, ARRAY[%s, %s])', 'err', :leased_id, :ready_id));
-- NULL id lists (22004); an empty list acts on nothing and returns 0, so a list built by
-- a query works when the query finds nothing (the runbook's retry of a dead consumer's leases)
SELECT try($$SELECT querator.queue_complete('err', NULL::bigint[])$$);
SELECT try($$SELECT querator.queue_retry('err', NULL::bigint[])$$);
SELECT try($$SELECT querator.queue_extend('err', NULL::bigint[])$$);
SELECT try_ids(format('SELECT querator.queue_complete(%L, ARRAY[%s, NULL])', 'err', :leased_id));
SELECT querator.queue_complete('err', ARRAY[]::bigint[]) AS completed,
       querator.queue_retry('err', '{}'::bigint[]) AS retried,
       querator.queue_retry('err', '{}'::bigint[], retry_at => now() + interval '1 hour', dead => true) AS retried_later,
       querator.queue_extend('err', ARRAY(SELECT id FROM querator.storage_items_list('err') WHERE client_id = 'gone')) AS extended;
-- the queue (and the caller's privilege on it) is still checked
SELECT try($$SELECT querator.queue_complete('no_such_queue', '{}'::bigint[])$$);
SELECT try($$SELECT querator.queue_retry('no_such_queue', '{}'::bigint[])$$);
-- bad extend timeout
SELECT try_ids(format('SELECT querator.queue_extend(%L, ARRAY[%s], %L)', 'err', :leased_id, '0'));
SELECT try_ids(format('SELECT querator.queue_extend(%L, ARRAY[%s], %L)', 'err', :leased_id, '-1 minute'));
-- nothing changed: the leased item is still leased with one attempt, the ready one ready
SELECT item_state('err', :leased_id) AS leased_item, item_state('err', :ready_id) AS ready_item;
SELECT attempts FROM querator.storage_items_list('err') WHERE id = :leased_id;
SELECT count(*) AS dead FROM querator.storage_dead_list('err');
SELECT count(*) AS scheduled FROM querator.storage_scheduled_list('err');

---------------------------------------------------------------- delete refusals
-- items remain
SELECT try($$SELECT querator.queues_delete('err')$$);
-- named as dead_queue by another queue
SELECT try($$SELECT querator.queues_delete('errdlq')$$);
SELECT count(*) AS queues FROM querator.queues_list() WHERE queue_name LIKE 'err%';

SELECT querator.queues_delete('err', force => true);
SELECT querator.queues_delete('errchain');
SELECT querator.queues_delete('errdlq', force => true);
DROP TABLE snap;
