"""Traffic policy beyond weights (issue 21): content-based steering (`match`), and the
plans that change a route's rules, faults, timeouts and retries or a DestinationRule's
circuit breaker (`edit`). Pure: the change workflow writes the plans."""
