DROP EXTENSION {{ name|ident }};
