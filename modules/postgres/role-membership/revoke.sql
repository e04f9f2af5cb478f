{# A membership that left the manifests (--prune), unless a PostgresRole of
   the manifests wants it in its memberOf. #}
{% set kept = namespace(by_role=false) %}
{% for other in related | default([]) if other.kind == "PostgresRole" and spec.role in other.identities
                                        and spec.group in (other.spec.memberOf | default([])) %}
{% set kept.by_role = true %}
{% endfor %}
{% if not kept.by_role %}
REVOKE {{ spec.group|ident }} FROM {{ spec.role|ident }};
{% endif %}
