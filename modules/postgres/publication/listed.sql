{#- A published table's column list and row filter (PostgreSQL 15+), for
    `r`, its pg_publication_rel row: columns in the table's order. -#}
{% if server_version_num >= 150000 %}
SELECT CASE WHEN r.prattrs IS NOT NULL THEN
           ARRAY(SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs)
                 ORDER BY a.attnum) END AS columns,
       pg_get_expr(r.prqual, r.prrelid) AS row_filter
{% else %}
SELECT NULL::name[] AS columns, NULL::text AS row_filter
{% endif %}
