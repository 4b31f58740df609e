-- querator's side of the reset: a fresh queue 'bench' (new tables) before every measured run.
SET client_min_messages = warning;
SELECT querator.queues_delete('bench', force => true)
  FROM querator.queues WHERE name = 'bench';
SELECT querator.queues_create('bench', lease_timeout => '1 minute');
