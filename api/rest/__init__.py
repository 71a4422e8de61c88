"""REST compatibility routes: translation only, one module per reproduced API."""
