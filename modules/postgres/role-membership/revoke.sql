{# A membership that left the manifests (--prune). #}
REVOKE {{ spec.group|ident }} FROM {{ spec.role|ident }};
