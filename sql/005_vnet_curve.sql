-- Meta-Weight-Net: the VNet's weight as a function of the loss at each
-- evaluation, {"loss": [...], "weight": [...]} (JSON); NULL for the other tasks.
ALTER TABLE evals ADD COLUMN vnet_curve TEXT;
