-- Each step row also as the JSON text the API serves, rendered once when
-- the step is logged, so that reading a page of steps writes no numbers.
-- Rows logged before this migration have none and are rendered on reading.
ALTER TABLE steps ADD COLUMN row TEXT;
