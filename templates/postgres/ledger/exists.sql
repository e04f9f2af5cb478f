{# Whether the ledger exists, and why it is not to be trusted (or null). #}
SELECT json_build_object(
    'exists', to_regclass('fleetform.ledger') IS NOT NULL,
    'untrusted', {% include "templates/postgres/ledger/untrusted.sql" %}
)
