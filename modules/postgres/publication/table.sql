{#- One published table as CREATE and ALTER PUBLICATION name it: schema and
    table, and the column list when only some columns are published. -#}
{%- if table is mapping %}{{ table.schema|ident }}.{{ table.table|ident }}{% if table.columns is defined %} ({{ table.columns|ident_list }}){% endif %}{% else %}{{ table|ident_path }}{% endif -%}
