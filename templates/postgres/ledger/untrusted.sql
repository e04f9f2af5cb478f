{# Why the ledger (schema fleetform, table fleetform.ledger) is not to be
   trusted, or NULL when it is (or does not exist yet). Its rows decide what
   --prune deletes, and a trigger, rule or policy on it would run with
   fleetform's rights on every record: only the role fleetform connects as,
   or a superuser, may own the schema and the table; nothing else may write
   to the table or hang code on it. An expression: exists.sql and
   prepare.sql include it. #}
(SELECT CASE
     WHEN n.oid IS NULL THEN NULL
     WHEN n.nspowner <> me.oid AND NOT schema_owner.rolsuper
         THEN format('schema fleetform is owned by %s, which is neither %s nor a superuser', schema_owner.rolname, me.rolname)
     WHEN c.oid IS NULL THEN NULL
     WHEN c.relkind <> 'r' THEN 'fleetform.ledger is not a plain table'
     WHEN c.relowner <> me.oid AND NOT table_owner.rolsuper
         THEN format('fleetform.ledger is owned by %s, which is neither %s nor a superuser', table_owner.rolname, me.rolname)
     WHEN EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
         THEN 'fleetform.ledger has a trigger'
     WHEN EXISTS (SELECT FROM pg_rewrite r WHERE r.ev_class = c.oid)
         THEN 'fleetform.ledger has a rule'
     WHEN c.relrowsecurity OR EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)
         THEN 'fleetform.ledger has row-level security'
     WHEN EXISTS (SELECT FROM aclexplode(c.relacl) a
                  WHERE a.grantee <> c.relowner
                    AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER'))
         THEN 'roles other than its owner may write to fleetform.ledger'
 END
 FROM pg_roles me
 LEFT JOIN pg_namespace n ON n.nspname = 'fleetform'
 LEFT JOIN pg_roles schema_owner ON schema_owner.oid = n.nspowner
 LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'ledger'
 LEFT JOIN pg_roles table_owner ON table_owner.oid = c.relowner
 WHERE me.rolname = current_user)
