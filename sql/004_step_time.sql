-- When each step was logged: Unix time in seconds (milliseconds kept), for
-- wall-clock charts. Rows logged before this migration have none (null).
ALTER TABLE steps ADD COLUMN at REAL;
