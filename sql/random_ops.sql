-- random_ops: random sequences of produce / lease / complete / retry / extend / refused calls,
-- with fixed seeds. A model table tracks every produced item by its payload (unique) and its
-- current id; after EVERY step (each its own transaction) check_model() compares the model with
-- the three storage lists and raises on any difference: every produced item is exactly one of
-- ready, scheduled, leased, completed (in no list) or dead, with the expected id and attempts.
-- Leases are also checked against FIFO order within a partition, retries against the tail.

CREATE TEMP TABLE model (
	key      text PRIMARY KEY,   -- the payload
	state    text NOT NULL CHECK (state IN ('ready', 'scheduled', 'leased', 'completed', 'dead')),
	id       bigint,             -- current id while ready, scheduled or leased
	attempts int NOT NULL DEFAULT 0,
	deadline timestamptz         -- lease_deadline seen at the last lease or extend
);
CREATE TEMP TABLE lease_before (id bigint, partition int, key text);
CREATE TEMP TABLE lease_got (id bigint, partition int, key text, attempts int, lease_deadline timestamptz);
CREATE TEMP TABLE summary (seed float8, partitions int, steps int, produced int, leased_total int,
                           completed int, retried int, max_dead int, refused int,
                           ready int, scheduled int, leased int, dead int, accounted boolean);

CREATE FUNCTION check_model(q text, step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	bad record;
BEGIN
	FOR bad IN
		WITH st AS (
			SELECT convert_from(payload, 'UTF8') AS key, id,
			       CASE WHEN leased THEN 'leased' ELSE 'ready' END AS state, attempts
			  FROM querator.storage_items_list(q, NULL, 10000)
			UNION ALL
			SELECT convert_from(payload, 'UTF8'), id, 'scheduled', attempts
			  FROM querator.storage_scheduled_list(q, NULL, 10000)
			UNION ALL
			SELECT convert_from(payload, 'UTF8'), id, 'dead', attempts
			  FROM querator.storage_dead_list(q, NULL, 10000)),
		dup AS (SELECT key FROM st GROUP BY key HAVING count(*) > 1)
		SELECT coalesce(m.key, s.key) AS key, m.state AS mstate, s.state AS sstate,
		       m.id AS mid, s.id AS sid, m.attempts AS mattempts, s.attempts AS sattempts,
		       coalesce(m.key, s.key) IN (SELECT key FROM dup) AS duplicated
		  FROM model m FULL JOIN st s ON s.key = m.key
		 WHERE m.key IS NULL
		    OR (s.key IS NULL AND m.state <> 'completed')
		    OR (s.key IS NOT NULL AND m.state = 'completed')
		    OR s.state <> m.state
		    OR (m.state <> 'dead' AND (s.id <> m.id OR s.attempts <> m.attempts))
		    OR m.key IN (SELECT key FROM dup)
		 LIMIT 1
	LOOP
		RAISE EXCEPTION 'step %: item % is % (id %, attempts %) in the model but % (id %, attempts %, duplicated %) in storage',
			step, bad.key, bad.mstate, bad.mid, bad.mattempts, bad.sstate, bad.sid, bad.sattempts, bad.duplicated;
	END LOOP;
END
$$;

-- pick(state, how many, r): that many items in the given state, chosen by r in key order
CREATE FUNCTION pick(want text, k int, r float8) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(key ORDER BY key), '{}')
	  FROM (SELECT key FROM model WHERE state = want ORDER BY key LIMIT k
	        OFFSET floor(r * greatest((SELECT count(*) FROM model WHERE state = want) - k + 1, 1))) s
$$;

CREATE PROCEDURE random_run(seed float8, parts int, steps int) LANGUAGE plpgsql AS $$
DECLARE
	q constant text := 'rnd';
	max_att constant int := 2;
	r_op float8; r_a float8; r_b float8;
	n int; cnt int; cnt2 int; p int;
	counter int := 0;
	v_keys text[]; v_ids bigint[]; v_at timestamptz; v_state text;
	v_key text; v_id bigint; v_att int; v_newid bigint; v_newpart int; v_part int;
	v_expected text[]; v_got text[];
	v_errstate text; v_want text; v_last_completed bigint;
	n_produced int := 0; n_leased int := 0; n_completed int := 0; n_retried int := 0; n_refused int := 0;
	n_max_dead int := 0;
BEGIN
	PERFORM querator.queues_create(q, lease_timeout => '1 hour', max_attempts => max_att, partitions => parts);
	TRUNCATE model;
	PERFORM setseed(seed);
	FOR step IN 1..steps LOOP
		-- three draws per step whatever happens, so the sequence of operations depends on the seed only
		r_op := random(); r_a := random(); r_b := random();

		IF r_op < 0.25 THEN
			------------------------------------------------ produce 1..3 items: now, past or future
			n := 1 + floor(r_a * 3)::int;
			v_keys := ARRAY(SELECT lpad((counter + g)::text, 5, '0') FROM generate_series(1, n) g);
			counter := counter + n;
			v_at := CASE WHEN r_b < 0.15 THEN now() + interval '1 day'
			             WHEN r_b < 0.30 THEN now() - interval '1 hour' END;
			v_state := CASE WHEN r_b < 0.15 THEN 'scheduled' ELSE 'ready' END;
			IF n = 1 AND r_b >= 0.65 THEN
				v_ids := ARRAY[querator.queue_produce(q, v_keys[1], enqueue_at => v_at)];
			ELSE
				v_ids := querator.queue_produce(q, v_keys, enqueue_at => v_at);
			END IF;
			IF cardinality(v_ids) <> n OR EXISTS (SELECT 1 FROM generate_series(2, n) g WHERE v_ids[g] <= v_ids[g - 1]) THEN
				RAISE EXCEPTION 'step %: produce returned ids %', step, v_ids;
			END IF;
			INSERT INTO model (key, state, id) SELECT v_keys[g], v_state, v_ids[g] FROM generate_series(1, n) g;
			n_produced := n_produced + n;
			IF v_state = 'ready' THEN
				-- one partition, at its tail
				SELECT count(DISTINCT partition), min(partition) INTO cnt, p
				  FROM querator.storage_items_list(q, NULL, 10000) WHERE id = ANY (v_ids);
				IF cnt <> 1 OR EXISTS (SELECT 1 FROM querator.storage_items_list(q, NULL, 10000)
				                        WHERE partition = p AND NOT id = ANY (v_ids) AND id > v_ids[1]) THEN
					RAISE EXCEPTION 'step %: produced items not at the tail of one partition', step;
				END IF;
			END IF;

		ELSIF r_op < 0.50 THEN
			------------------------------------------------ lease 1..4
			n := 1 + floor(r_a * 4)::int;
			DELETE FROM lease_before;
			INSERT INTO lease_before
				SELECT id, partition, convert_from(payload, 'UTF8') FROM querator.storage_items_list(q, NULL, 10000) WHERE NOT leased;
			DELETE FROM lease_got;
			INSERT INTO lease_got
				SELECT id, partition, convert_from(payload, 'UTF8'), attempts, lease_deadline
				  FROM querator.queue_lease(q, 'client-' || (step % 3), n);
			SELECT count(*), count(DISTINCT partition), min(partition) INTO cnt, cnt2, p FROM lease_got;
			IF cnt = 0 AND EXISTS (SELECT 1 FROM lease_before) THEN
				RAISE EXCEPTION 'step %: lease returned nothing while items were ready', step;
			END IF;
			IF cnt > 0 THEN
				v_expected := ARRAY(SELECT key FROM lease_before WHERE partition = p ORDER BY id LIMIT n);
				v_got := ARRAY(SELECT key FROM lease_got ORDER BY id);
				IF cnt2 <> 1 OR v_got IS DISTINCT FROM v_expected THEN
					RAISE EXCEPTION 'step %: lease of % gave % (% partitions), expected the oldest %', step, n, v_got, cnt2, v_expected;
				END IF;
				IF EXISTS (SELECT 1 FROM lease_got g JOIN model m USING (key)
				            WHERE m.state <> 'ready' OR g.id <> m.id OR g.attempts <> m.attempts + 1
				               OR g.lease_deadline - now() NOT BETWEEN interval '59 minutes' AND interval '61 minutes') THEN
					RAISE EXCEPTION 'step %: leased items do not match the model', step;
				END IF;
				UPDATE model m SET state = 'leased', attempts = m.attempts + 1, deadline = g.lease_deadline
				  FROM lease_got g WHERE g.key = m.key;
				n_leased := n_leased + cnt;
			END IF;

		ELSIF r_op < 0.62 THEN
			------------------------------------------------ complete 1..3 leased items
			v_keys := pick('leased', 1 + floor(r_a * 3)::int, r_b);
			IF cardinality(v_keys) > 0 THEN
				v_ids := ARRAY(SELECT id FROM model WHERE key = ANY (v_keys) ORDER BY key);
				IF cardinality(v_ids) = 1 THEN
					cnt := querator.queue_complete(q, v_ids[1]);
				ELSE
					cnt := querator.queue_complete(q, v_ids);
				END IF;
				IF cnt <> cardinality(v_ids) THEN
					RAISE EXCEPTION 'step %: complete of % returned %', step, cardinality(v_ids), cnt;
				END IF;
				v_last_completed := v_ids[1];
				UPDATE model SET state = 'completed', id = NULL, deadline = NULL WHERE key = ANY (v_keys);
				n_completed := n_completed + cnt;
			END IF;

		ELSIF r_op < 0.74 THEN
			------------------------------------------------ retry now, one item (the order of several new ids is not specified)
			v_keys := pick('leased', 1, r_a);
			IF cardinality(v_keys) > 0 THEN
				SELECT id, attempts INTO v_id, v_att FROM model WHERE key = v_keys[1];
				SELECT partition INTO v_part FROM querator.storage_items_list(q, v_id, 1) WHERE id = v_id;
				IF r_b < 0.5 THEN
					cnt := querator.queue_retry(q, v_id);
				ELSE
					cnt := querator.queue_retry(q, ARRAY[v_id]);
				END IF;
				IF cnt <> 1 THEN
					RAISE EXCEPTION 'step %: retry returned %', step, cnt;
				END IF;
				IF v_att >= max_att THEN
					UPDATE model SET state = 'dead', id = NULL, deadline = NULL WHERE key = v_keys[1];
					n_max_dead := n_max_dead + 1;
				ELSE
					SELECT id, partition INTO v_newid, v_newpart
					  FROM querator.storage_items_list(q, NULL, 10000) WHERE convert_from(payload, 'UTF8') = v_keys[1];
					IF v_newid IS NULL OR v_newid <= v_id OR v_newpart <> v_part
					   OR EXISTS (SELECT 1 FROM querator.storage_items_list(q, NULL, 10000)
					               WHERE partition = v_part AND id > v_newid) THEN
						RAISE EXCEPTION 'step %: retried item % is not at the tail of its partition (old id %, new id %)', step, v_keys[1], v_id, v_newid;
					END IF;
					UPDATE model SET state = 'ready', id = v_newid, deadline = NULL WHERE key = v_keys[1];
				END IF;
				n_retried := n_retried + 1;
			END IF;

		ELSIF r_op < 0.80 THEN
			------------------------------------------------ retry later, 1..2 items: scheduled, or dead at max_attempts
			v_keys := pick('leased', 1 + floor(r_a * 2)::int, r_b);
			IF cardinality(v_keys) > 0 THEN
				v_ids := ARRAY(SELECT id FROM model WHERE key = ANY (v_keys) ORDER BY key);
				cnt := querator.queue_retry(q, v_ids, now() + interval '1 day');
				IF cnt <> cardinality(v_ids) THEN
					RAISE EXCEPTION 'step %: retry later returned %', step, cnt;
				END IF;
				UPDATE model SET state = 'dead', id = NULL, deadline = NULL WHERE key = ANY (v_keys) AND attempts >= max_att;
				GET DIAGNOSTICS cnt2 = ROW_COUNT;
				n_max_dead := n_max_dead + cnt2;
				UPDATE model m SET state = 'scheduled', id = s.id, deadline = NULL
				  FROM querator.storage_scheduled_list(q, NULL, 10000) s
				 WHERE m.key = ANY (v_keys) AND m.state = 'leased' AND convert_from(s.payload, 'UTF8') = m.key;
				n_retried := n_retried + cnt;
			END IF;

		ELSIF r_op < 0.86 THEN
			------------------------------------------------ retry dead, 1..2 items
			v_keys := pick('leased', 1 + floor(r_a * 2)::int, r_b);
			IF cardinality(v_keys) > 0 THEN
				v_ids := ARRAY(SELECT id FROM model WHERE key = ANY (v_keys) ORDER BY key);
				cnt := querator.queue_retry(q, v_ids, dead => true);
				IF cnt <> cardinality(v_ids) THEN
					RAISE EXCEPTION 'step %: retry dead returned %', step, cnt;
				END IF;
				UPDATE model SET state = 'dead', id = NULL, deadline = NULL WHERE key = ANY (v_keys);
				n_retried := n_retried + cnt;
			END IF;

		ELSIF r_op < 0.93 THEN
			------------------------------------------------ extend 1..2 leased items by 2 hours
			v_keys := pick('leased', 1 + floor(r_a * 2)::int, r_b);
			IF cardinality(v_keys) > 0 THEN
				v_ids := ARRAY(SELECT id FROM model WHERE key = ANY (v_keys) ORDER BY key);
				cnt := querator.queue_extend(q, v_ids, '2 hours');
				IF cnt <> cardinality(v_ids) OR EXISTS (
					SELECT 1 FROM querator.storage_items_list(q, NULL, 10000) l JOIN model m ON m.id = l.id
					 WHERE m.key = ANY (v_keys)
					   AND (NOT l.leased OR l.lease_deadline <= m.deadline
					        OR l.lease_deadline - now() NOT BETWEEN interval '119 minutes' AND interval '121 minutes')) THEN
					RAISE EXCEPTION 'step %: extend did not move the deadlines of %', step, v_keys;
				END IF;
				UPDATE model m SET deadline = l.lease_deadline
				  FROM querator.storage_items_list(q, NULL, 10000) l WHERE m.id = l.id AND m.key = ANY (v_keys);
			END IF;

		ELSE
			------------------------------------------------ a call that must be refused and change nothing
			v_keys := pick('leased', 1, r_a);
			v_ids := ARRAY(SELECT id FROM model WHERE key = ANY (pick('ready', 1, r_b)));
			v_errstate := NULL;
			v_want := NULL;
			BEGIN
				IF cardinality(v_keys) > 0 AND cardinality(v_ids) > 0 THEN
					v_want := '55000';   -- a leased and a ready item: all or none
					PERFORM querator.queue_complete(q, ARRAY[(SELECT id FROM model WHERE key = v_keys[1]), v_ids[1]]);
				ELSIF cardinality(v_ids) > 0 THEN
					v_want := '55000';   -- retry of a ready item
					PERFORM querator.queue_retry(q, v_ids);
				ELSIF v_last_completed IS NOT NULL THEN
					v_want := '42704';   -- extend of a completed item
					PERFORM querator.queue_extend(q, ARRAY[v_last_completed]);
				END IF;
			EXCEPTION WHEN OTHERS THEN
				v_errstate := SQLSTATE;
			END;
			IF v_want IS NOT NULL THEN
				IF v_errstate IS DISTINCT FROM v_want THEN
					RAISE EXCEPTION 'step %: expected SQLSTATE %, got %', step, v_want, coalesce(v_errstate, 'success');
				END IF;
				n_refused := n_refused + 1;
			END IF;
		END IF;

		PERFORM check_model(q, step);
		COMMIT;
	END LOOP;

	INSERT INTO summary
	SELECT seed, parts, steps, n_produced,
	       -- with several partitions, which partition a lease takes is not specified: only
	       -- what the seed alone decides is printed
	       CASE WHEN parts = 1 THEN n_leased END, CASE WHEN parts = 1 THEN n_completed END,
	       CASE WHEN parts = 1 THEN n_retried END, CASE WHEN parts = 1 THEN n_max_dead END,
	       CASE WHEN parts = 1 THEN n_refused END,
	       CASE WHEN parts = 1 THEN count(*) FILTER (WHERE state = 'ready') END,
	       CASE WHEN parts = 1 THEN count(*) FILTER (WHERE state = 'scheduled') END,
	       CASE WHEN parts = 1 THEN count(*) FILTER (WHERE state = 'leased') END,
	       CASE WHEN parts = 1 THEN count(*) FILTER (WHERE state = 'dead') END,
	       count(*) = n_produced
	  FROM model;
	PERFORM querator.queues_delete(q, force => true);
	COMMIT;
END
$$;

CALL random_run(0.11, 1, 300);
CALL random_run(0.57, 1, 300);
CALL random_run(0.83, 3, 300);
SELECT * FROM summary ORDER BY seed;

DROP PROCEDURE random_run(float8, int, int);
DROP FUNCTION pick(text, int, float8);
DROP FUNCTION check_model(text, int);
DROP TABLE model, lease_before, lease_got, summary;
