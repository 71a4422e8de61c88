"""HTTP plumbing shared by GraphQL and REST: credentials, cookies, middleware."""
