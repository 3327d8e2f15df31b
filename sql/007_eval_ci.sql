-- Few-shot tasks (lft): the 95 % interval of test_acc over the test
-- episodes, 1.96 std / sqrt(episodes); NULL for the other tasks.
ALTER TABLE evals ADD COLUMN test_acc_ci95 REAL;
