{#- One published table as CREATE and ALTER PUBLICATION name it: schema and
    table, the column list when only some columns are published, and the
    row filter (the user's own SQL, as written). -#}
{%- if table is mapping %}{{ table.schema|ident }}.{{ table.table|ident }}{% if table.columns is defined %} ({{ table.columns|ident_list }}){% endif %}{% if table.where is defined %} WHERE ({{ table.where }}){% endif %}{% else %}{{ table|ident_path }}{% endif -%}
