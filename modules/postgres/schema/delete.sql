DROP SCHEMA {{ name|ident }};
