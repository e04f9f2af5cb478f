CREATE SUBSCRIPTION {{ name|ident }}
    CONNECTION {% include "modules/postgres/subscription/conninfo.sql" %}

    PUBLICATION {{ desired.publications|ident_list }}
    WITH (enabled = {{ desired.enabled }}, copy_data = {{ desired.copyData }});
COMMENT ON SUBSCRIPTION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
