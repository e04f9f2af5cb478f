{# Where the grantees of this instance's grants can hold privileges no grant
   covers. PostgreSQL records in pg_shdepend (one catalog for the whole
   instance) every role an object's ACL names, except the object's owner:
   per database ('' for cluster-wide objects, a database's own ACL under its
   name) the catalogs whose objects name one of them. The inventory reads
   only those catalogs. PUBLIC and the roles initdb made are pinned (nothing
   is recorded for them): when a grant names one, the answer is null and the
   inventory reads every catalog. #}
WITH grantees AS (
    SELECT w.name, r.oid
    FROM unnest(ARRAY[{% for item in wanted %}{{ item.spec.role }}{% if not loop.last %}, {% endif %}{% endfor %}]::text[]) w(name)
    LEFT JOIN pg_roles r ON r.rolname = w.name
),
mentions AS (
    SELECT CASE WHEN s.classid = 'pg_database'::regclass THEN d.datname
                WHEN s.dbid = 0 THEN ''
                ELSE o.datname END AS place,
           s.classid::regclass::text AS catalog
    FROM pg_shdepend s
    LEFT JOIN pg_database d ON s.classid = 'pg_database'::regclass AND d.oid = s.objid
    LEFT JOIN pg_database o ON o.oid = s.dbid
    WHERE s.deptype = 'a' AND s.refclassid = 'pg_authid'::regclass
      AND s.refobjid IN (SELECT oid FROM grantees WHERE oid IS NOT NULL)
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM grantees WHERE name = 'PUBLIC' OR oid < 16384) THEN 'null'::json
            ELSE (SELECT coalesce(json_object_agg(place, catalogs), '{}'::json)
                  FROM (SELECT place, json_agg(DISTINCT catalog) AS catalogs
                        FROM mentions WHERE place IS NOT NULL GROUP BY place) p)
       END
