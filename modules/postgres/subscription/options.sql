{#- The subscription's WITH options the manifest sets: all of them when
    creating (after the fixed ones, each with a leading comma), those in
    `options` when updating (the first without one). -#}
{%- set names = [("synchronousCommit", "synchronous_commit"), ("binary", "binary"), ("streaming", "streaming"), ("disableOnError", "disable_on_error"), ("origin", "origin")] -%}
{%- set ns = namespace(first=(action != "create")) -%}
{%- for field, option in names if desired[field] is defined and (action == "create" or field in options) -%}
{%- if not ns.first %}, {% endif %}{% set ns.first = false %}{{ option|ident }} = {{ desired[field] }}
{%- endfor -%}
