{% if desired.type == "logical" %}
SELECT pg_create_logical_replication_slot({{ name }}, {{ desired.plugin | default("pgoutput") }}, false{% if server_version_num >= 140000 %}, {{ desired.twoPhase }}{% endif %}{% if server_version_num >= 170000 %}, {{ desired.failover | default(false) }}{% endif %});
{% else %}
SELECT pg_create_physical_replication_slot({{ name }}, {{ desired.reserveWal }});
{% endif %}
