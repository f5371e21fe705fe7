"""Detection rules: the rule file schema, the rule types that evaluate search results, the runner
that executes one rule over one window, and the shipped rule content."""
