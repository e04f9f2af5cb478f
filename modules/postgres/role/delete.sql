DROP ROLE {{ name|ident }};
