-- ceiling: one round trip that does nothing; the most transactions/s this machine can carry
SELECT 1;
