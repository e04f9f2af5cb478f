SELECT json_build_object('exists', to_regclass('fleetform.ledger') IS NOT NULL)
