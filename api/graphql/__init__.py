"""GraphQL translation: parse input, call a service, map results and errors. No SQL here."""
