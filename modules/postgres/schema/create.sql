CREATE SCHEMA {{ name|ident }}{% if desired.owner is defined %} AUTHORIZATION {{ desired.owner|ident }}{% endif %};
COMMENT ON SCHEMA {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
