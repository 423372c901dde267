-- Nothing reads the ledger by namespace and time (usage comes from usage_daily, balances
-- from balances); the index cost one more B-tree insert per charged query.
DROP INDEX ledger_namespace;
