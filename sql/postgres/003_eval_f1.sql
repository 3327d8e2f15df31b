-- Token classification (ner): entity-level F1, percent, on the target
-- language's dev and test sets; NULL for the other tasks.
ALTER TABLE evals ADD COLUMN dev_f1 DOUBLE PRECISION;
ALTER TABLE evals ADD COLUMN test_f1 DOUBLE PRECISION;
