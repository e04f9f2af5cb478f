{# One row per custom SQL resource of this database: its test query's answer
   and its drift query's result. #}
SELECT json_build_array(
{% for item in wanted %}
    json_build_object(
        'identity', {{ item.identity }},
        {# Each query ends on its own line: a trailing -- comment in it cannot
           swallow what follows. #}
        'inDesiredState', coalesce(({{ item.spec.test }}
        )::boolean, false),
        'state', {% if item.spec.drift is defined %}to_json(({{ item.spec.drift }}
        )){% else %}NULL::json{% endif %}

    ){% if not loop.last %},{% endif %}

{% endfor %}
)
